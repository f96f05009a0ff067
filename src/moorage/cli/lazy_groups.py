"""Sub-command groups whose modules are imported, and commands that are built, when they are used.

Typer builds a whole command tree before it parses a command line: every group's module imported,
every parameter of every command made into a click parameter (reading each function's signature
and type hints, most of a short command's time). ``LazyGroups``, the class of the root group,
holds its groups by name and module, and builds one on first access: the group a command line
names, or all of them for the root's help, for shell completion and for the suggestions after a
mistyped command. A group built so (``lazy_group``) builds its own commands and sub-groups the
same way, one when a command line names it.
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from functools import partial
from typing import Any, ClassVar

import typer
import typer.main
from typer.core import TyperGroup

from moorage.cli.typer_click import Command

__all__ = ["LazyGroups", "lazy_group"]

Build = Callable[[], Command]


class _Commands(MutableMapping[str, Command]):
    """A group's commands by name, in the order they were given; a lazy one is built when read."""

    def __init__(self, built: MutableMapping[str, Command], lazy: Mapping[str, Build]) -> None:
        self._built = dict(built)
        self._lazy = {name: build for name, build in lazy.items() if name not in self._built}
        self._order = [*self._built, *self._lazy]

    def __getitem__(self, name: str) -> Command:
        build = self._lazy.pop(name, None)
        if build is not None:
            self._built[name] = build()
        return self._built[name]

    def __contains__(self, name: object) -> bool:  # without building it
        return name in self._built or name in self._lazy

    def __setitem__(self, name: str, command: Command) -> None:
        self._lazy.pop(name, None)
        if name not in self._built:
            self._order.append(name)
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        if name not in self:
            raise KeyError(name)
        self._built.pop(name, None)
        self._lazy.pop(name, None)
        self._order.remove(name)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._order))

    def __len__(self) -> int:
        return len(self._order)


class LazyGroups(TyperGroup):
    """A Typer group (``typer.Typer(cls=...)``) with sub-command groups built when used. A subclass
    names them in ``lazy``: group name -> the module whose ``app`` (a ``typer.Typer``) it is."""

    lazy: ClassVar[dict[str, str]] = {}

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        builds: dict[str, Build] = {n: partial(_from_module, m, n) for n, m in self.lazy.items()}
        self.commands = _Commands(self.commands, builds)


def _from_module(module: str, name: str) -> Command:
    return lazy_group(importlib.import_module(module).app, name)


def lazy_group(app: typer.Typer, name: str, *, root: bool = False) -> TyperGroup:
    """``app`` as a click group named ``name`` (its callback, options and help as Typer makes
    them; for the ``root`` command also Typer's completion options), whose commands and
    sub-groups are built when first read."""
    shell = copy.copy(app)
    shell.registered_commands, shell.registered_groups = [], []
    group = typer.main.get_command(shell) if root else typer.main.get_group(shell)
    assert isinstance(group, TyperGroup), "a Typer app with a callback is a group"
    group.name = name
    builds: dict[str, Build] = {}
    for info in app.registered_commands:
        assert info.callback is not None
        command = info.name or typer.main.get_command_name(info.callback.__name__)
        builds[command] = partial(
            typer.main.get_command_from_info,
            info,
            pretty_exceptions_short=app.pretty_exceptions_short,
            rich_markup_mode=app.rich_markup_mode,
        )
    for sub in app.registered_groups:
        assert sub.typer_instance is not None and isinstance(sub.name, str), "sub-groups are named"
        builds[sub.name] = partial(lazy_group, sub.typer_instance, sub.name)
    if isinstance(group.commands, _Commands):  # a LazyGroups class: its module groups after these
        builds |= group.commands._lazy
    group.commands = _Commands({}, builds)
    return group

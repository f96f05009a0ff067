"""Sub-command groups whose modules are imported, and whose commands are built, when they are used.

Typer builds a whole command tree before it parses a command line: every group's module imported,
every parameter of every command made into a click parameter. ``LazyGroups``, the class of the
root group, holds its groups by name and module, and builds one on first access: the group a
command line names, or all of them for the root's help, for shell completion and for the
suggestions after a mistyped command.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from typing import Any, ClassVar

import typer.main
from typer.core import TyperGroup

from moorage.cli.typer_click import Command

__all__ = ["LazyGroups"]


class _Commands(MutableMapping[str, Command]):
    """A group's commands by name, in the order they were given; a lazy one is built when read."""

    def __init__(self, built: MutableMapping[str, Command], lazy: dict[str, str]) -> None:
        self._built = dict(built)
        self._lazy = {name: module for name, module in lazy.items() if name not in self._built}
        self._order = [*self._built, *self._lazy]

    def __getitem__(self, name: str) -> Command:
        module = self._lazy.pop(name, None)
        if module is not None:
            group = typer.main.get_group(importlib.import_module(module).app)
            group.name = name
            self._built[name] = group
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
        self.commands = _Commands(self.commands, self.lazy)

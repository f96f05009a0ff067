"""The click that Typer runs on: its exceptions, and the usage line of the command a user typed.

Typer 0.2x carries its own copy of click (``typer._click``), whose exceptions are not the ones of
the ``click`` package: a handler that catches ``click.ClickException`` misses every usage error
(unknown command or option, missing argument, bad value) and Python prints a traceback. Older
Typer releases run on ``click`` itself. This module names the one that is in use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["ClickException", "Command", "UsageError", "usage_context"]

try:
    from typer._click.core import Command
    from typer._click.exceptions import ClickException, UsageError
except ImportError:  # a Typer that runs on the click package
    from click.core import Command  # type: ignore[assignment]
    from click.exceptions import ClickException, UsageError  # type: ignore[assignment]


def usage_context(command: Any, args: Sequence[str], prog_name: str) -> Any:
    """A context of the deepest (sub-)command that ``args`` name, for its usage line.

    The option parser raises some usage errors (an option without its value, a value for a flag)
    before the command's context exists, and click shows those without a usage line.
    """
    ctx = command.context_class(command, info_name=prog_name)
    for arg in args:
        find = getattr(ctx.command, "get_command", None)
        found = find(ctx, arg) if find is not None and not arg.startswith("-") else None
        if found is not None:
            ctx = found.context_class(found, parent=ctx, info_name=arg)
    return ctx

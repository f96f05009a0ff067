"""Destructive commands ask first, and refuse without --force when nobody can answer."""

from __future__ import annotations

import sys

import typer

from moorage.errors import MoorageError

__all__ = ["require_force"]


def require_force(force: bool, question: str) -> None:
    if force:
        return
    if not sys.stdin.isatty():
        raise MoorageError("Command requires --force")
    if not typer.confirm(question, default=False):
        raise typer.Abort()

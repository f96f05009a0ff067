"""Options several commands share."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["Force", "Json", "NoWait"]

Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts")]
Force = Annotated[bool, typer.Option("--force", help="Do not ask for confirmation")]
NoWait = Annotated[bool, typer.Option("--no-wait", help="Return at once instead of following the deployment")]

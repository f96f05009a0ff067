"""moorage driver dirvol: a Docker volume plugin that keeps each volume as a folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from moorage.errors import InvalidInput

__all__ = ["app"]

app = typer.Typer(help="Volume drivers that ship with Moorage.", no_args_is_help=True)


@app.command("dirvol")
def dirvol(
    root: Annotated[
        Path, typer.Option("--root", help="Folder that holds the volumes (shared storage for global)")
    ],
    scope: Annotated[
        str, typer.Option("--scope", help="local, or global when --root is shared by all nodes")
    ] = "local",
    socket: Annotated[
        Path | None, typer.Option("--socket", help="Plugin socket (default /run/docker/plugins/dirvol.sock)")
    ] = None,
) -> None:
    """Serve the dirvol volume plugin on a unix socket until stopped."""
    from moorage.driver.dirvol import DEFAULT_SOCKET, SCOPES, serve

    if scope not in SCOPES:
        raise InvalidInput.one("--scope", f"Unknown scope '{scope}', must be one of {', '.join(SCOPES)}")
    serve(root, socket or DEFAULT_SOCKET, scope)

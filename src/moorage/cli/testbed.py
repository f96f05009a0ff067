"""moorage testbed up|env|down|node stop|node start"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["app"]

app = typer.Typer(help="A real multi-node grid on this Linux host (root, docker.io).", no_args_is_help=True)
node_app = typer.Typer(help="Take one testbed node down or up.", no_args_is_help=True)
app.add_typer(node_app, name="node")

DEFAULT_DIR = Path("/var/lib/moorage-testbed")
Dir = Annotated[Path, typer.Option("--dir", help="Testbed state folder")]


@app.command("up")
def up(
    nodes: Annotated[int, typer.Option("--nodes", min=1, max=20, help="How many nodes")] = 3,
    zones: Annotated[str, typer.Option("--zones", help="Comma-separated zones, given round robin")] = "",
    directory: Dir = DEFAULT_DIR,
) -> None:
    """Start a master and NODES engines with agents; print the env to use them."""
    from moorage.testbed import bed

    zone_list = [z.strip() for z in zones.split(",") if z.strip()]
    print(bed.up(nodes=nodes, zones=zone_list, directory=directory), end="")


@app.command("env")
def env(directory: Dir = DEFAULT_DIR) -> None:
    """Print export lines for the running testbed: eval "$(moorage testbed env)"."""
    from moorage.testbed import bed

    print(bed.env(directory), end="")


@app.command("down")
def down(directory: Dir = DEFAULT_DIR) -> None:
    """Stop everything the testbed started and remove its namespaces, mounts and folders."""
    from moorage.testbed import bed

    bed.down(directory)


@node_app.command("stop")
def node_stop(name: str, directory: Dir = DEFAULT_DIR) -> None:
    """Stop one node's agent and engine."""
    from moorage.testbed import bed

    bed.node_stop(directory, name)


@node_app.command("start")
def node_start(name: str, directory: Dir = DEFAULT_DIR) -> None:
    """Start one node's engine and agent again."""
    from moorage.testbed import bed

    bed.node_start(directory, name)

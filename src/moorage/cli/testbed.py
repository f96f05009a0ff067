"""moorage testbed up|env|down|node stop|start|cut|heal|agent stop|start|master restart"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["app"]

app = typer.Typer(help="A real multi-node grid on this Linux host (root, docker.io).", no_args_is_help=True)
node_app = typer.Typer(
    help="Take one testbed node (engine, agent, drivers) down or up, or cut it off.", no_args_is_help=True
)
agent_app = typer.Typer(help="Stop or start only one node's agent.", no_args_is_help=True)
master_app = typer.Typer(help="The testbed's master.", no_args_is_help=True)
app.add_typer(node_app, name="node")
app.add_typer(agent_app, name="agent")
app.add_typer(master_app, name="master")

DEFAULT_DIR = Path("/var/lib/moorage-testbed")
Dir = Annotated[Path, typer.Option("--dir", help="Testbed state folder")]


@app.command("up")
def up(
    nodes: Annotated[int, typer.Option("--nodes", min=1, max=20, help="How many nodes")] = 3,
    zones: Annotated[str, typer.Option("--zones", help="Comma-separated zones, given round robin")] = "",
    driver: Annotated[
        list[str] | None,
        typer.Option(
            "--driver", help="Run a dirvol volume plugin on some nodes: NAME@node-1,node-2 (repeat)"
        ),
    ] = None,
    shared_driver: Annotated[
        str | None,
        typer.Option(
            "--shared-driver", help="Name of a dirvol plugin with one shared root on all nodes (scope global)"
        ),
    ] = None,
    zone_driver: Annotated[
        str | None,
        typer.Option(
            "--zone-driver",
            help=(
                "Name of a dirvol plugin (scope global) on every node whose root is shared by the "
                "nodes of one zone only (needs --zones)"
            ),
        ),
    ] = None,
    heartbeat_interval: Annotated[
        float | None,
        typer.Option(
            "--heartbeat-interval",
            min=0.1,
            help="The master's heartbeat interval in seconds (3 missed = offline)",
        ),
    ] = None,
    masters: Annotated[
        int,
        typer.Option(
            "--masters",
            min=1,
            max=5,
            help="How many masters, behind HAProxy on 127.0.0.1 (more than one needs --db postgresql://...)",
        ),
    ] = 1,
    db: Annotated[
        str | None,
        typer.Option("--db", help="The masters' database URL (default: the master's SQLite file)"),
    ] = None,
    directory: Dir = DEFAULT_DIR,
) -> None:
    """Start a master (or several behind HAProxy) and NODES engines with agents; print the env to use them."""
    from moorage.testbed import bed

    zone_list = [z.strip() for z in zones.split(",") if z.strip()]
    drivers = bed.parse_drivers([d.replace("@", "=", 1) for d in driver or []])
    print(
        bed.up(
            nodes=nodes,
            zones=zone_list,
            directory=directory,
            drivers=drivers,
            shared_driver=shared_driver,
            zone_driver=zone_driver,
            heartbeat_interval=heartbeat_interval,
            masters=masters,
            db_url=db,
        ),
        end="",
    )


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
def node_stop(
    name: str,
    directory: Dir = DEFAULT_DIR,
    kill: Annotated[bool, typer.Option("--kill", help="A power cut: no time for containers to stop")] = False,
) -> None:
    """Stop one node's agent, engine and volume drivers (its data stays)."""
    from moorage.testbed import bed

    bed.node_stop(directory, name, grace=0.0 if kill else 15.0)


@agent_app.command("stop")
def agent_stop(
    name: str,
    directory: Dir = DEFAULT_DIR,
    kill: Annotated[bool, typer.Option("--kill", help="SIGKILL: no time to say goodbye")] = False,
) -> None:
    """Stop only NAME's agent; its engine and containers keep running."""
    from moorage.testbed import bed

    bed.agent_stop(directory, name, kill=kill)


@agent_app.command("start")
def agent_start(name: str, directory: Dir = DEFAULT_DIR) -> None:
    """Start NAME's agent again and wait until the node is online."""
    from moorage.testbed import bed

    bed.agent_start(directory, name)


@master_app.command("stop")
def master_stop(
    name: str,
    directory: Dir = DEFAULT_DIR,
    kill: Annotated[bool, typer.Option("--kill", help="SIGKILL instead of SIGTERM: a crash")] = False,
) -> None:
    """Stop one of several masters (master-1, master-2, ...); HAProxy sends its agents to the others."""
    from moorage.testbed import bed

    bed.master_stop(directory, name, kill=kill)
    print(f"{name} {'killed' if kill else 'stopped'}.")


@master_app.command("start")
def master_start(name: str, directory: Dir = DEFAULT_DIR) -> None:
    """Start one of several masters again (same address and data); wait until it answers."""
    from moorage.testbed import bed

    bed.master_start(directory, name)
    print(f"{name} started.")


@master_app.command("restart")
def master_restart(
    directory: Dir = DEFAULT_DIR,
    kill: Annotated[bool, typer.Option("--kill", help="SIGKILL instead of SIGTERM: a crash")] = False,
) -> None:
    """Restart the master (same address and data); wait until every node with a running agent
    that is not cut off is back online, and name the nodes it did not wait for."""
    from moorage.testbed import bed

    print(bed.master_restart(directory, kill=kill))


@node_app.command("start")
def node_start(name: str, directory: Dir = DEFAULT_DIR) -> None:
    """Start one node's engine and agent again."""
    from moorage.testbed import bed

    bed.node_start(directory, name)


@node_app.command("cut")
def node_cut(name: str, directory: Dir = DEFAULT_DIR) -> None:
    """Cut NAME off: its agent's traffic to the master goes silent (held, not closed) and its
    containers' network goes down, until 'moorage testbed node heal NAME'."""
    from moorage.testbed import bed

    print(bed.node_cut(directory, name))


@node_app.command("heal")
def node_heal(name: str, directory: Dir = DEFAULT_DIR) -> None:
    """End a cut: NAME's traffic flows again and its containers' network comes back up."""
    from moorage.testbed import bed

    print(bed.node_heal(directory, name))

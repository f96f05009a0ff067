"""moorage node ls|show|label add|label rm|drain|undrain|rm"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from moorage.cli.confirm import require_force
from moorage.cli.context import CliContext
from moorage.cli.options import Force, Json
from moorage.cli.output import ago, print_json, table

__all__ = ["app"]

app = typer.Typer(help="Nodes: Docker hosts whose agents joined the grid.", no_args_is_help=True)
label_app = typer.Typer(help="Node labels (zone=a, disk=ssd, …).", no_args_is_help=True)
app.add_typer(label_app, name="label")


def _drivers(node: dict[str, Any]) -> str:
    return ",".join(d["name"] for d in node["drivers"]) or "-"


def _status(node: dict[str, Any]) -> str:
    """``online``, ``online,drained`` for a node that takes no instances, ``offline,lost`` for a
    node declared lost."""
    marks = [
        node["status"],
        *(["drained"] if node.get("drained") else []),
        *(["lost"] if node.get("lost_at") else []),
    ]
    return ",".join(marks)


@app.command("ls")
def ls(ctx: typer.Context, json: Json = False) -> None:
    """List the grid's nodes."""
    cli: CliContext = ctx.obj
    with cli.client() as client:
        nodes = client.get(f"/v1/nodes/{cli.grid}")["nodes"]
    if json:
        print_json(nodes)
        return
    table(
        ["NAME", "STATUS", "SINCE", "ZONE", "LABELS", "DRIVERS", "MASTER"],
        [
            (
                n["name"],
                _status(n),
                ago(n["status_since"]),
                n["zone"] or "-",
                ",".join(n["labels"]) or "-",
                _drivers(n),
                n.get("master") or "-",
            )
            for n in nodes
        ],
    )


@app.command("show")
def show(ctx: typer.Context, name: str, json: Json = False) -> None:
    """Show one node: status and since when, engine, labels, volume drivers."""
    cli: CliContext = ctx.obj
    with cli.client() as client:
        node = client.get(f"/v1/nodes/{cli.grid}/{name}")
    if json:
        print_json(node)
        return
    lines = [
        f"{node['name']}:",
        f"  id: {node['id']}",
        f"  grid: {node['grid']}",
        f"  status: {node['status']} since {node['status_since']} ({ago(node['status_since'])})",
        f"  drained: {'yes (takes no instances until undrained)' if node.get('drained') else 'no'}",
        f"  lost: {'declared lost at ' + node['lost_at'] if node.get('lost_at') else 'no'}",
        f"  last seen: {node['last_seen_at']}",
        f"  zone: {node['zone'] or '-'}",
        f"  master: {node.get('master') or '-'}",
        f"  engine: {node['engine_version'] or '-'}",
        f"  cpus: {node['cpus']}",
        f"  memory: {node['memory'] / 2**30:.1f} GiB",
        "  labels:",
        *[f"    - {label}" for label in node["labels"]],
        "  volume drivers:",
        *[
            f"    - {d['name']} (version: {d['version'] or 'unknown'}, scope: {d['scope'] or 'unknown'})"
            for d in node["drivers"]
        ],
    ]
    print("\n".join(lines))


@label_app.command("add")
def label_add(
    ctx: typer.Context, name: str, labels: Annotated[list[str], typer.Argument(help="key=value …")]
) -> None:
    """Add or change labels on a node."""
    cli: CliContext = ctx.obj
    with cli.client() as client:
        node = client.post(f"/v1/nodes/{cli.grid}/{name}/labels", {"labels": labels})
    print(f"{name}: {','.join(node['labels']) or '-'}")


@label_app.command("rm")
def label_rm(ctx: typer.Context, name: str, keys: Annotated[list[str], typer.Argument(help="key …")]) -> None:
    """Remove labels from a node (by key, or key=value)."""
    cli: CliContext = ctx.obj
    with cli.client() as client:
        node = client.delete(
            f"/v1/nodes/{cli.grid}/{name}/labels", params={"key": [k.partition("=")[0] for k in keys]}
        )
    print(f"{name}: {','.join(node['labels']) or '-'}")


DryRun = Annotated[
    bool,
    typer.Option("--dry-run", help="Only print what would move where and what would stay; change nothing"),
]


@app.command("drain")
def drain(ctx: typer.Context, name: str, dry_run: DryRun = False, json: Json = False) -> None:
    """Stop placing instances on a node and move its instances off (exit 1 if any stays).

    Instances whose data only this node holds (node-topology volumes) move with it: a volume
    move job each, to the node the scheduler picks; the command follows them as 'volume move'
    does. A failed move leaves its instance running here, as before. With --json: print the master's answer (what moves where, what stays and why) and return;
    the drain goes on in the master."""
    from moorage.cli.drain import follow_drain, print_drain_plan

    cli: CliContext = ctx.obj
    path = f"/v1/nodes/{cli.grid}/{name}/drain"
    with cli.client() as client:
        report = client.post(path, params={"dry_run": "true"} if dry_run else None)
        if json:
            print_json(report)
            return
        print_drain_plan(report)
        if not dry_run:
            follow_drain(client, cli.grid, path, report)


@app.command("undrain")
def undrain(ctx: typer.Context, name: str) -> None:
    """Let a drained node take instances again (nothing moves back by itself)."""
    cli: CliContext = ctx.obj
    with cli.client() as client:
        client.post(f"/v1/nodes/{cli.grid}/{name}/undrain")
    print(f"{name}: takes instances again")


@app.command("declare-lost")
def declare_lost(
    ctx: typer.Context,
    name: str,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Declare it lost even though it is online (its containers are removed, its data kept stale)",
        ),
    ] = False,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Do not follow the restores it starts")] = False,
    json: Json = False,
) -> None:
    """Say a node is gone: each volume's on_node_lost decides what becomes of the data it held
    (wait for the node, restore the latest backup elsewhere, or recreate it empty elsewhere).

    Exit 1 when a restore it started failed."""
    from moorage.cli.node_loss import follow_restores, print_declared

    cli: CliContext = ctx.obj
    with cli.client() as client:
        report = client.post(f"/v1/nodes/{cli.grid}/{name}/lost", params={"force": "true"} if force else None)
        if json:
            print_json(report)
            return
        print_declared(report)
        if not no_wait and not follow_restores(client, cli.grid, report):
            raise typer.Exit(1)


@app.command("rm")
def rm(
    ctx: typer.Context,
    name: str,
    force: Force = False,
) -> None:
    """Remove an offline node from the grid."""
    cli: CliContext = ctx.obj
    require_force(force, f"Remove node {name}?")
    with cli.client() as client:
        client.delete(f"/v1/nodes/{cli.grid}/{name}")
    print(f"Removed node {name}")

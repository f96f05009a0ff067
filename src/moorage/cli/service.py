"""moorage service create|deploy|ls|show|scale|rm — ``stack/service``, or ``service`` in the null stack."""

from __future__ import annotations

from typing import Annotated

import typer

from moorage.cli.confirm import require_force
from moorage.cli.context import CliContext
from moorage.cli.options import Force, Json, NoWait
from moorage.cli.output import print_json, table
from moorage.cli.progress import follow_started
from moorage.cli.stack import instances_table
from moorage.model.stack import NULL_STACK

__all__ = ["app"]

app = typer.Typer(help="Services: stand-alone ones (null stack) and those of stacks.", no_args_is_help=True)


def _path(grid: str, ref: str) -> str:
    stack, sep, name = ref.rpartition("/")
    return f"/v1/services/{grid}/{stack if sep else NULL_STACK}/{name}"


@app.command("create")
def create(
    ctx: typer.Context,
    name: str,
    image: str,
    instances: Annotated[int, typer.Option("--instances", help="How many instances")] = 1,
    volume: Annotated[
        list[str] | None, typer.Option("-v", "--volume", help="name:/path[:ro], /host:/path, /path")
    ] = None,
    env: Annotated[list[str] | None, typer.Option("-e", "--env", help="K=V (repeat)")] = None,
    cmd: Annotated[str | None, typer.Option("--cmd", help="Command to run")] = None,
    port: Annotated[list[str] | None, typer.Option("-p", "--port", help="HOST:CONTAINER (repeat)")] = None,
    affinity: Annotated[
        list[str] | None, typer.Option("--affinity", help="node==x, label==zone=a, … (repeat)")
    ] = None,
    strategy: Annotated[str | None, typer.Option("--strategy", help="ha, daemon or random")] = None,
    json: Json = False,
) -> None:
    """Create a stand-alone service (in the null stack); deploy it with 'moorage service deploy'."""
    cli: CliContext = ctx.obj
    body = {
        "name": name,
        "image": image,
        "instances": instances,
        "volumes": volume or [],
        "env": env or [],
        "cmd": cmd,
        "ports": port or [],
        "affinity": affinity or [],
        "strategy": strategy,
    }
    with cli.client() as client:
        service = client.post(f"/v1/services/{cli.grid}", body)
    if json:
        print_json(service)
    else:
        print(f"Created service {service['id']}")


@app.command("deploy")
def deploy(ctx: typer.Context, name: str, no_wait: NoWait = False) -> None:
    """Deploy a service."""
    cli: CliContext = ctx.obj
    with cli.client() as client:
        follow_started(client, client.post(_path(cli.grid, name) + "/deploy"), f"service {name}", no_wait)


@app.command("scale")
def scale(ctx: typer.Context, name: str, instances: int, no_wait: NoWait = False) -> None:
    """Change how many instances a service runs, and deploy."""
    cli: CliContext = ctx.obj
    with cli.client() as client:
        started = client.post(_path(cli.grid, name) + "/scale", {"instances": instances})
        follow_started(client, started, f"service {name}", no_wait)


@app.command("ls")
def ls(ctx: typer.Context, json: Json = False) -> None:
    """List every service of the grid."""
    cli: CliContext = ctx.obj
    with cli.client() as client:
        services = client.get(f"/v1/services/{cli.grid}")["services"]
    if json:
        print_json(services)
        return
    table(
        ["NAME", "IMAGE", "INSTANCES", "RUNNING", "STRATEGY"],
        [
            (
                s["name"] if s["stack"] == NULL_STACK else f"{s['stack']}/{s['name']}",
                s["image"],
                s["instances"],
                sum(1 for c in s["containers"] if c["state"] == "running"),
                s["strategy"],
            )
            for s in services
        ],
    )


@app.command("show")
def show(ctx: typer.Context, name: str, json: Json = False) -> None:
    """Show a service and its instances with node, state, container and uptime."""
    cli: CliContext = ctx.obj
    with cli.client() as client:
        service = client.get(_path(cli.grid, name))
    if json:
        print_json(service)
        return
    print(f"{service['id']}:")
    for key in ("image", "command", "instances", "strategy"):
        print(f"  {key}: {service[key] if service[key] is not None else '-'}")
    for key in ("volumes", "ports", "affinity", "environment"):
        if service[key]:
            print(f"  {key}:")
            for item in service[key]:
                print(f"    - {item}")
    print()
    instances_table([service])


@app.command("rm")
def rm(
    ctx: typer.Context,
    name: str,
    force: Force = False,
) -> None:
    """Remove a stand-alone service and its containers. Its volumes and their data stay."""
    cli: CliContext = ctx.obj
    require_force(force, f"Remove service {name}?")
    with cli.client() as client:
        client.delete(_path(cli.grid, name))
    print(f"Removed service {name} (volumes kept)")

"""moorage service create|deploy|ls|show|scale|rm|logs|exec — ``stack/service``, or ``service`` in
the null stack."""

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


def _since(value: str | None) -> str | None:
    from moorage.cli.service_io import checked_since

    return checked_since(value)


@app.command("logs")
def logs(
    ctx: typer.Context,
    name: str,
    instance: Annotated[
        int | None, typer.Argument(min=1, help="One instance's number; all if absent")
    ] = None,
    follow: Annotated[bool, typer.Option("-f", "--follow", help="Keep printing new output")] = False,
    tail: Annotated[
        int | None, typer.Option("--tail", min=0, help="The last N lines of each instance")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            callback=_since,
            help="Output since a time: 10m, 1h30m, 2024-05-01T12:00:00Z or unix seconds",
        ),
    ] = None,
    timestamps: Annotated[bool, typer.Option("-t", "--timestamps", help="Show each line's time")] = False,
    json: Annotated[
        bool, typer.Option("--json", help="Print the master's NDJSON, one object per line")
    ] = False,
) -> None:
    """Print a service's output, each line prefixed with its instance and node."""
    from moorage.cli.service_io import show_logs

    cli: CliContext = ctx.obj
    code = show_logs(
        cli, name, instance, follow=follow, tail=tail, since=since, timestamps=timestamps, as_json=json
    )
    raise typer.Exit(code)


@app.command("exec")
def exec_(
    ctx: typer.Context,
    name: str,
    instance: Annotated[int, typer.Argument(min=1, help="The instance's number")],
    cmd: Annotated[list[str], typer.Argument(help="The command and its arguments (after --)")],
    interactive: Annotated[
        bool, typer.Option("-i", "--interactive", help="Pass stdin to the command")
    ] = False,
    tty: Annotated[
        bool, typer.Option("-t", "--tty", help="A terminal for the command (when stdin is one)")
    ] = False,
) -> None:
    """Run a command in one instance's container; exit with the command's exit status."""
    from moorage.cli.service_io import run_exec

    cli: CliContext = ctx.obj
    raise typer.Exit(run_exec(cli, name, instance, cmd, interactive=interactive, tty=tty))

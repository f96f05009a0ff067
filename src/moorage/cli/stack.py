"""moorage stack validate|install|upgrade|deploy|ls|show|rm"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from moorage.cli.confirm import require_force
from moorage.cli.context import CliContext
from moorage.cli.options import Force, Json, NoWait
from moorage.cli.output import print_json, table
from moorage.cli.progress import follow_started, uptime
from moorage.errors import MoorageError

__all__ = ["app", "instances_table"]

app = typer.Typer(
    help="Stacks: services installed from one stack file, with revisions.", no_args_is_help=True
)
NoDeploy = Annotated[
    bool, typer.Option("--no-deploy", help="Store it; deploy later with 'moorage stack deploy'")
]
File = Annotated[Path, typer.Argument(help="Stack file (YAML)")]


@dataclass(frozen=True)
class _StackFile:
    name: str  # the stack's name
    document: dict[str, Any]  # validated and normalized: what the API takes
    text: str  # as written: the revision's source


def _load(path: Path, grid: str, name: str | None) -> _StackFile:
    # the stack file pipeline (and pydantic, yaml) is loaded only by the commands that read a file
    from moorage.stackfile import decode_stack_file, load_stack, stack_to_dict

    try:
        data = path.read_bytes()
    except OSError as err:
        raise MoorageError(f"Cannot read stack file {path}: {err.strerror}") from err
    text = decode_stack_file(data, source=str(path))
    spec = load_stack(text, env=dict(os.environ), grid=grid, name=name, source=str(path))
    return _StackFile(spec.name, stack_to_dict(spec), text)


@app.command("validate")
def validate(
    ctx: typer.Context, file: File, name: Annotated[str | None, typer.Option("--name")] = None
) -> None:
    """Check a stack file and print it normalized (every default explicit, variables filled in)."""
    import yaml

    cli: CliContext = ctx.obj
    stack = _load(file, cli.grid_name or "grid", name)
    print(yaml.safe_dump(stack.document, sort_keys=False), end="")


@app.command("install")
def install(
    ctx: typer.Context,
    file: File,
    name: Annotated[
        str | None, typer.Option("--name", help="Stack name (default: the part after / in stack:)")
    ] = None,
    no_deploy: NoDeploy = False,
    no_wait: NoWait = False,
) -> None:
    """Install a stack from a file and deploy it."""
    cli: CliContext = ctx.obj
    stack = _load(file, cli.grid, name)
    with cli.client() as client:
        started = client.post(
            f"/v1/stacks/{cli.grid}",
            {"stack": stack.document, "source": stack.text, "name": stack.name, "deploy": not no_deploy},
        )
        print(f"Installed stack {stack.name}")
        follow_started(client, started, f"stack {stack.name}", no_wait)


@app.command("upgrade")
def upgrade(
    ctx: typer.Context, name: str, file: File, no_deploy: NoDeploy = False, no_wait: NoWait = False
) -> None:
    """Upgrade a stack to a new revision from a file, and deploy it (rolling)."""
    cli: CliContext = ctx.obj
    stack = _load(file, cli.grid, name)
    with cli.client() as client:
        started = client.request(
            "PUT",
            f"/v1/stacks/{cli.grid}/{name}",
            json={"stack": stack.document, "source": stack.text, "deploy": not no_deploy},
        )
        print(f"Upgraded stack {name}")
        follow_started(client, started, f"stack {name}", no_wait)


@app.command("deploy")
def deploy(ctx: typer.Context, name: str, no_wait: NoWait = False) -> None:
    """Deploy a stack's current revision."""
    cli: CliContext = ctx.obj
    with cli.client() as client:
        follow_started(client, client.post(f"/v1/stacks/{cli.grid}/{name}/deploy"), f"stack {name}", no_wait)


def _counts(services: list[dict[str, Any]]) -> str:
    running = sum(1 for s in services for c in s["containers"] if c["state"] == "running")
    wanted = sum(len(s["containers"]) for s in services)
    return f"{running}/{wanted}"


@app.command("ls")
def ls(ctx: typer.Context, json: Json = False) -> None:
    """List stacks."""
    cli: CliContext = ctx.obj
    with cli.client() as client:
        stacks = client.get(f"/v1/stacks/{cli.grid}")["stacks"]
    if json:
        print_json(stacks)
        return
    table(
        ["NAME", "REVISION", "SERVICES", "RUNNING", "UPDATED"],
        [
            (s["name"], s["revision"], len(s["services"]), _counts(s["services"]), s["updated_at"])
            for s in stacks
        ],
    )


def instances_table(services: list[dict[str, Any]]) -> None:
    table(
        ["INSTANCE", "NODE", "STATE", "CONTAINER", "UPTIME", "REASON"],
        [
            (
                (s["name"] if s["stack"] == "null" else f"{s['stack']}/{s['name']}") + f"-{c['instance']}",
                c["node"] or "-",
                c["state"] + (f" ({c['exit_code']})" if c["exit_code"] is not None else ""),
                c["container"] or "-",
                uptime(c),
                c["reason"] or "",
            )
            for s in services
            for c in s["containers"]
        ],
    )


@app.command("show")
def show(ctx: typer.Context, name: str, json: Json = False) -> None:
    """Show a stack: revision, services, and each instance with node, state, container and uptime."""
    cli: CliContext = ctx.obj
    with cli.client() as client:
        stack = client.get(f"/v1/stacks/{cli.grid}/{name}")
    if json:
        print_json(stack)
        return
    print(f"{stack['id']}:\n  revision: {stack['revision']}")
    if stack["description"]:
        print(f"  description: {stack['description']}")
    print(
        f"  services: {', '.join(s['name'] for s in stack['services'])}\n  running: {_counts(stack['services'])}\n"
    )
    instances_table(stack["services"])


@app.command("rm")
def rm(
    ctx: typer.Context,
    name: str,
    force: Force = False,
    volumes: Annotated[
        bool,
        typer.Option(
            "--volumes", help="Also remove the volumes the stack owns and their data (never external ones)"
        ),
    ] = False,
) -> None:
    """Remove a stack and its containers. Its volumes and their data stay, unless --volumes."""
    cli: CliContext = ctx.obj
    with cli.client() as client:
        if not volumes:
            require_force(force, f"Remove stack {name}?")
            client.delete(f"/v1/stacks/{cli.grid}/{name}")
            print(f"Removed stack {name} (volumes kept)")
            return
        owner = f"{cli.grid}/{name}"
        own = [v["name"] for v in client.get(f"/v1/volumes/{cli.grid}")["volumes"] if v.get("stack") == owner]
        listed = ", ".join(own) if own else "none"
        require_force(
            force, f"Remove stack {name} and its volumes ({listed}) with the data in their Docker volumes?"
        )
        client.delete(f"/v1/stacks/{cli.grid}/{name}", params={"volumes": "true"})
    print(f"Removed stack {name} and its volumes: {listed}")

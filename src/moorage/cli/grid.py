"""moorage grid create|ls|show|use|rm|token"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from moorage.cli.confirm import require_force
from moorage.cli.context import CliContext, save_config
from moorage.cli.options import Force, Json
from moorage.cli.output import err_console, print_json, table
from moorage.errors import MoorageError

__all__ = ["app"]

app = typer.Typer(help="Grids: isolated clusters in one master.", no_args_is_help=True)


@app.command("create")
def create(ctx: typer.Context, name: str, json: Json = False) -> None:
    """Create a grid and switch to it."""
    cli: CliContext = ctx.obj
    with cli.client() as client:
        grid = client.post("/v1/grids", {"name": name})
    save_config(grid=name)
    if json:
        print_json(grid)
    else:
        print(
            f"Created grid {name} and switched to it. Its join token (shown only now; the master keeps a hash):"
        )
        print(f"  {grid['join_token']}")
        print(
            "Join nodes with it in a file (not on the command line, where 'ps' shows it):\n"
            f"  moorage agent --master {cli.url} --token-file FILE\n"
            "Lost it? 'moorage grid token --rotate' makes a new one (joined nodes keep working)."
        )


@app.command("ls")
def ls(ctx: typer.Context, json: Json = False) -> None:
    """List grids."""
    cli: CliContext = ctx.obj
    with cli.client() as client:
        grids = client.get("/v1/grids")["grids"]
    if json:
        print_json(grids)
        return
    current = cli.grid_name
    table(
        ["NAME", "NODES", "CREATED"],
        [
            (("* " if g["name"] == current else "") + g["name"], g["node_count"], g["created_at"])
            for g in grids
        ],
    )


@app.command("show")
def show(
    ctx: typer.Context, name: Annotated[str | None, typer.Argument()] = None, json: Json = False
) -> None:
    """Show a grid (the current one by default)."""
    cli: CliContext = ctx.obj
    with cli.client() as client:
        grid = client.get(f"/v1/grids/{name or cli.grid}")
    if json:
        print_json(grid)
        return
    print(f"{grid['name']}:\n  nodes: {grid['node_count']}\n  created: {grid['created_at']}")
    print(f"  backups: {grid.get('backup_repo') or '- (moorage grid backup-repo set URL)'}")


@app.command("use")
def use(ctx: typer.Context, name: str) -> None:
    """Make NAME the grid later commands act on."""
    cli: CliContext = ctx.obj
    with cli.client() as client:
        client.get(f"/v1/grids/{name}")
    save_config(grid=name)
    print(f"Using grid {name}")


@app.command("rm")
def rm(
    ctx: typer.Context,
    name: str,
    force: Force = False,
) -> None:
    """Remove an empty grid."""
    cli: CliContext = ctx.obj
    require_force(force, f"Remove grid {name}?")
    with cli.client() as client:
        client.delete(f"/v1/grids/{name}")
    print(f"Removed grid {name}")


@app.command("token")
def token(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Grid (default: the current one)")] = None,
    rotate: Annotated[
        bool,
        typer.Option(
            "--rotate",
            help="Make a new join token; the old one stops admitting agents, and agents it admitted "
            "that have no node credential are disconnected",
        ),
    ] = False,
    json: Json = False,
) -> None:
    """Rotate the token agents use to join the grid (it is shown only when made)."""
    cli: CliContext = ctx.obj
    grid = name or cli.grid
    with cli.client() as client:
        result = client.post(f"/v1/grids/{grid}/token") if rotate else client.get(f"/v1/grids/{grid}/token")
    if json:
        print_json(result)
        return
    print(result["token"])
    if result.get("disconnected"):
        err_console().print(
            f"Closed {result['disconnected']} agent connection(s) the old token had admitted; "
            "each reconnects with its own node credential"
        )


repo_app = typer.Typer(help="Where the grid's backups go: a restic repository.", no_args_is_help=True)
app.add_typer(repo_app, name="backup-repo")


@repo_app.command("set")
def set_repo(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="A restic repository: /srv/backups, sftp:, s3:, rest:, ...")],
    password_file: Annotated[
        Path | None, typer.Option("--password-file", help="Read the repository's password from this file")
    ] = None,
    json: Json = False,
) -> None:
    """Back the grid up to URL: opened if a repository is there, initialised if none is. The
    password is kept by the master for the agents and never shown again."""
    cli: CliContext = ctx.obj
    if password_file is not None:
        try:
            password = password_file.read_text().rstrip("\r\n")
        except OSError as err:
            raise MoorageError(f"Cannot read --password-file {password_file}: {err.strerror}") from err
    elif sys.stdin.isatty():
        password = typer.prompt("Repository password", hide_input=True)
    else:
        raise MoorageError("Give the repository's password with --password-file F")
    if not password:
        raise MoorageError(f"--password-file {password_file} is empty: write the password in it")
    with cli.client() as client:
        result = client.request(
            "PUT", f"/v1/grids/{cli.grid}/backup-repo", {"url": url, "password": password}
        )
    if json:
        print_json(result)
    else:
        made = "initialised a new restic repository" if result["initialized"] else "opened the repository"
        print(f"Grid {cli.grid} backs up to {result['url']} ({made})")

"""moorage token create|ls|rm|rotate: the master's admin tokens, one per person or CI."""

from __future__ import annotations

import typer

from moorage.cli.confirm import require_force
from moorage.cli.context import CliContext
from moorage.cli.options import Force, Json
from moorage.cli.output import ago, print_json, table

__all__ = ["app"]

app = typer.Typer(
    help="Admin tokens: one per person or CI, each can be rotated and removed.", no_args_is_help=True
)


def _print_secret(made: dict[str, str], what: str) -> None:
    print(f"{what} {made['name']}. Its secret, shown only now (the master keeps only a hash):")
    print(f"  {made['token']}")


@app.command("create")
def create(ctx: typer.Context, name: str, json: Json = False) -> None:
    """Make an admin token called NAME and print its secret (once)."""
    cli: CliContext = ctx.obj
    with cli.client() as client:
        made = client.post("/v1/tokens", {"name": name})
    if json:
        print_json(made)
    else:
        _print_secret(made, "Created admin token")


@app.command("ls")
def ls(ctx: typer.Context, json: Json = False) -> None:
    """List admin tokens: names, when made, when last used (never a secret)."""
    cli: CliContext = ctx.obj
    with cli.client() as client:
        tokens = client.get("/v1/tokens")["tokens"]
    if json:
        print_json(tokens)
        return
    table(
        ["NAME", "CREATED", "LAST USED"],
        [
            (t["name"], t["created_at"], ago(t["last_used_at"]) if t["last_used_at"] else "never")
            for t in tokens
        ],
    )


@app.command("rotate")
def rotate(ctx: typer.Context, name: str, json: Json = False) -> None:
    """Give token NAME a new secret; the old one stops working at once."""
    cli: CliContext = ctx.obj
    with cli.client() as client:
        made = client.post(f"/v1/tokens/{name}/rotate")
    if json:
        print_json(made)
    else:
        _print_secret(made, "Rotated admin token")


@app.command("rm")
def rm(ctx: typer.Context, name: str, force: Force = False) -> None:
    """Revoke token NAME: it stops working at once."""
    cli: CliContext = ctx.obj
    require_force(force, f"Remove admin token {name}?")
    with cli.client() as client:
        client.delete(f"/v1/tokens/{name}")
    print(f"Removed admin token {name}")

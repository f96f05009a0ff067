"""The ``moorage`` command: global options, sub-commands, and how errors end a command."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import httpx
import typer

from moorage.cli import driver, grid, node, servers, service, stack, testbed, token, volume
from moorage.cli.context import CliContext, save_config
from moorage.cli.output import err_console, print_error
from moorage.cli.typer_click import ClickException, UsageError, usage_context
from moorage.client.api import MasterClient
from moorage.errors import MoorageError

__all__ = ["app", "main"]

PROG_NAME = "moorage"  # also under 'python -m moorage'

app = typer.Typer(
    name="moorage",
    help="Moorage: containers with managed named volumes on your own Docker hosts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def root(
    ctx: typer.Context,
    url: Annotated[str | None, typer.Option("--url", help="Master URL (or MOORAGE_URL)")] = None,
    token: Annotated[str | None, typer.Option("--token", help="Admin token (or MOORAGE_TOKEN)")] = None,
    grid_name: Annotated[str | None, typer.Option("--grid", help="Grid to act on (or MOORAGE_GRID)")] = None,
    ca: Annotated[
        Path | None, typer.Option("--ca", help="CA (PEM) to check an https:// master against (or MOORAGE_CA)")
    ] = None,
) -> None:
    # A caller that runs the app itself may pass a transport as ``obj``: tests of online commands
    # (Typer's CliRunner with an httpx.MockTransport) answer for the master that way.
    transport = ctx.obj if isinstance(ctx.obj, httpx.BaseTransport) else None
    ctx.obj = CliContext.resolve(url, token, grid_name, ca, transport)


@app.command()
def login(
    ctx: typer.Context,
    url: Annotated[str, typer.Option("--url", help="Master URL, e.g. http://127.0.0.1:8470")],
    token: Annotated[str, typer.Option("--token", help="An admin token of that master")],
    grid_name: Annotated[str | None, typer.Option("--grid", help="Grid to use from now on")] = None,
    ca: Annotated[
        Path | None, typer.Option("--ca", help="CA (PEM) that signed an https:// master's certificate; saved")
    ] = None,
) -> None:
    """Check a master URL and token, and save them for later commands."""
    ca = ca.resolve() if ca is not None else None
    cli: CliContext = ctx.obj
    with MasterClient(url, token, ca=ca, transport=cli.transport) as client:
        grids = [g["name"] for g in client.get("/v1/grids")["grids"]]
    if grid_name is None and len(grids) == 1:
        grid_name = grids[0]
    if grid_name is not None and grid_name not in grids:
        raise MoorageError(f"Grid {grid_name} not found on {url}; 'moorage grid create {grid_name}' makes it")
    path = save_config(url=url, token=token, grid=grid_name, ca=str(ca) if ca is not None else "")
    print(f"Logged in to {url} (saved in {path})" + (f"; using grid {grid_name}" if grid_name else ""))


app.add_typer(grid.app, name="grid")
app.add_typer(node.app, name="node")
app.add_typer(volume.app, name="volume")
app.add_typer(stack.app, name="stack")
app.add_typer(service.app, name="service")
app.add_typer(testbed.app, name="testbed")
app.add_typer(driver.app, name="driver")
app.add_typer(token.app, name="token")
servers.register(app)


def main() -> None:
    try:
        code = app(prog_name=PROG_NAME, standalone_mode=False)  # returns a typer.Exit's code, no exit
    except MoorageError as err:
        print_error(err.message)
        sys.exit(1)
    except UsageError as err:
        if err.ctx is None:
            err.ctx = usage_context(typer.main.get_command(app), sys.argv[1:], PROG_NAME)
        err.show()
        sys.exit(err.exit_code)
    except ClickException as err:
        err.show()
        sys.exit(err.exit_code if err.exit_code else 1)
    except typer.Abort:
        err_console.print("Aborted.")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)

"""The ``moorage`` command: global options, sub-commands, and how errors end a command."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer

from moorage.cli import events, servers
from moorage.cli.context import CliContext, save_config
from moorage.cli.lazy_groups import LazyGroups, lazy_group
from moorage.cli.output import err_console, print_error
from moorage.cli.typer_click import ClickException, UsageError, usage_context
from moorage.errors import MoorageError

if TYPE_CHECKING:
    import httpx

__all__ = ["app", "main"]

PROG_NAME = "moorage"  # also under 'python -m moorage'


class _Root(LazyGroups):
    """The sub-command groups, in the order help lists them; each module has the group's ``app``."""

    lazy = {
        "grid": "moorage.cli.grid",
        "node": "moorage.cli.node",
        "volume": "moorage.cli.volume",
        "stack": "moorage.cli.stack",
        "service": "moorage.cli.service",
        "testbed": "moorage.cli.testbed",
        "driver": "moorage.cli.driver",
        "token": "moorage.cli.token",
    }


app = typer.Typer(
    cls=_Root,
    name="moorage",
    help="Moorage: containers with managed named volumes on your own Docker hosts.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
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
    ctx.obj = CliContext.resolve(url, token, grid_name, ca, _transport(ctx.obj))


def _transport(obj: object) -> httpx.BaseTransport | None:
    """The transport a caller that runs the app itself passed as ``obj``: tests of online commands
    (Typer's CliRunner with an httpx.MockTransport) answer for the master that way. Such a caller
    has imported httpx; a command typed in a shell does not import it before it calls the master."""
    loaded = sys.modules.get("httpx")
    if loaded is not None and isinstance(obj, loaded.BaseTransport):
        return cast("httpx.BaseTransport", obj)
    return None


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
    from moorage.client.api import MasterClient

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


servers.register(app)
events.register(app)


def main() -> None:
    try:
        # (as app() runs it, with the root's own commands built when named too)
        command = lazy_group(app, PROG_NAME, root=True)
        code = command.main(prog_name=PROG_NAME, standalone_mode=False)  # a typer.Exit's code, no exit
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
        err_console().print("Aborted.")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)

"""``moorage events``: what happened in the grid, oldest first; ``--follow`` goes on printing.

A line for people: ``TIME  KIND  MESSAGE  (by TOKEN)``; ``--json``: the master's event objects,
one a line (``time``, ``kind``, ``message``, ``actor``, ``cursor`` and the subject's ids).
Following survives a master restart: it reconnects and reads on from the last event it printed.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated, Any

import typer

from moorage.cli.context import CliContext
from moorage.errors import MoorageError

__all__ = ["register"]

RECONNECT = 120.0  # seconds the master may be away while following before the command gives up


def _line(event: dict[str, Any]) -> str:
    when = str(event.get("time", ""))[:19].replace("T", " ")
    actor = f"  (by {event['actor']})" if event.get("actor") else ""
    return f"{when}  {event.get('kind', '')}  {event.get('message', '')}{actor}"


def _show(event: dict[str, Any], as_json: bool) -> None:
    sys.stdout.write((json.dumps(event) if as_json else _line(event)) + "\n")
    sys.stdout.flush()


def events(
    ctx: typer.Context,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new events")] = False,
    stack: Annotated[str | None, typer.Option("--stack", help="Only this stack's events")] = None,
    service: Annotated[
        str | None,
        typer.Option(
            "--service", help="Only this service's (stack/service, or service): its instances' timeline"
        ),
    ] = None,
    volume: Annotated[
        str | None, typer.Option("--volume", help="Only this volume's and its instances'")
    ] = None,
    node: Annotated[str | None, typer.Option("--node", help="Only this node's (name or id)")] = None,
    kind: Annotated[
        str | None, typer.Option("--kind", help="Only this kind, or subject (e.g. deployment, node.offline)")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000, help="How many past events")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line")] = False,
) -> None:
    """What happened in the grid: deployments, instance and volume instance changes, nodes, users."""
    cli: CliContext = ctx.obj
    path = f"/v1/grids/{cli.grid}/events"
    params: dict[str, Any] = {"limit": limit}
    if service is not None:  # stack/service as the other commands name it; a bare name: the null stack
        named_stack, _, named = service.rpartition("/")
        params["service"] = named
        stack = stack or named_stack or "null"
    for key, value in (("stack", stack), ("volume", volume), ("node", node), ("kind", kind)):
        if value is not None:
            params[key] = value
    with cli.client() as client:
        if not follow:
            for event in client.get(path, params)["events"]:
                _show(event, as_json)
            return
        _follow(client, path, params, as_json)


def _follow(client: Any, path: str, params: dict[str, Any], as_json: bool) -> None:
    from moorage.cli.output import err_console
    from moorage.client.api import ApiError

    cursor: str | None = None
    lost: float | None = None
    while True:
        query = {**params, "follow": "true"}
        if cursor is not None:
            query["after"] = cursor
        try:
            for event in client.stream_lines(path, query, read_timeout=None):
                if lost is not None:
                    err_console().print("Reconnected to the master; following on")
                    lost = None
                cursor = event.get("cursor", cursor)
                _show(event, as_json)
        except ApiError as err:
            if err.status_code < 500:
                raise
            lost = _lost(err, lost)
            continue
        except MoorageError as err:
            lost = _lost(err, lost)
            continue
        lost = _lost(MoorageError("it ended the stream (stopping?)"), lost)


def _lost(err: MoorageError, since: float | None) -> float:
    from moorage.cli.output import err_console

    now = time.monotonic()
    if since is None:
        err_console().print(f"Lost the master ({err.message}); reconnecting ...")
        since = now
    elif now - since > RECONNECT:
        raise MoorageError(
            f"The master has not answered for {RECONNECT:.0f}s; stopped following events"
        ) from err
    time.sleep(1.0)
    return since


def register(app: typer.Typer) -> None:
    app.command("events")(events)

"""Following a deployment: a live view per instance (node, state), then a summary."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

from moorage.cli.output import ago, console, err_console
from moorage.errors import MoorageError
from moorage.model.deployment import SUPERSEDED

if TYPE_CHECKING:
    from rich.table import Table

    from moorage.client.api import MasterClient

__all__ = ["follow_deployment", "follow_move", "follow_started", "uptime", "watch_deployment"]

POLL = 0.3
WAIT = 10.0  # seconds the master may hold a look at a running deployment until it ends or changes
TIMEOUT = 900.0
RECONNECT = 120.0  # how long the master may be unreachable (a restart) before following gives up


def _rows(deployment: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows = []
    for service in deployment["services"]:
        short = service["name"] if service["stack"] == "null" else f"{service['stack']}/{service['name']}"
        for c in service["containers"]:
            stale = not c["up_to_date"] and c["state"] in ("running", "created", "exited", "restarting")
            state = f"{c['state']} (old version)" if stale else c["state"]
            rows.append((f"{short}-{c['instance']}", c["node"] or "-", state, c["reason"] or ""))
    return rows


def _table(deployment: dict[str, Any]) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, show_edge=False, pad_edge=False, header_style="bold")
    for header in ("INSTANCE", "NODE", "STATE", "REASON"):
        table.add_column(header, overflow="fold")
    for row in _rows(deployment):
        table.add_row(*(Text(cell) for cell in row))
    return table


def _handing_over(deployment: dict[str, Any]) -> bool:
    """Stopped for a newer deployment that the master has not recorded yet (a moment's gap)."""
    message = deployment.get("message") or ""
    return deployment["state"] != "running" and message.endswith(SUPERSEDED)


class _Follower:
    """Polls a deployment: through a master restart (it reconnects), and on to the newer
    deployment when one supersedes it (its outcome is the one that counts)."""

    def __init__(self, client: MasterClient, deployment_id: str, what: str) -> None:
        self.client = client
        self.deployment_id = deployment_id
        self.what = what
        self.lost_since: float | None = None  # the master stopped answering
        self.handover_since: float | None = None  # superseded, and the newer deployment not named yet

    def get(self, wait: float = 0.0) -> dict[str, Any]:
        """The current deployment, once the master answers; switches to a superseding one.
        ``wait``: a running one is answered when it ends or changes (or after that long)."""
        from moorage.client.api import ApiError

        while True:
            try:
                deployment: dict[str, Any] = self.client.get(
                    f"/v1/deployments/{self.deployment_id}", {"wait": wait} if wait else None
                )
            except ApiError as err:
                if err.status_code < 500:
                    raise
                self._lost(err)
                continue
            except MoorageError as err:  # the master cannot be reached (restarting, or gone)
                self._lost(err)
                continue
            if self.lost_since is not None:
                err_console().print(f"Reconnected to the master; following deployment {self.deployment_id}")
                self.lost_since = None
            newer = deployment.get("superseded_by")
            if not newer and _handing_over(deployment):
                self._wait_for_newer()
                continue
            if not newer:
                return deployment
            err_console().print(
                f"Deployment {self.deployment_id} of {self.what} was superseded by deployment {newer}; "
                "following that one"
            )
            self.deployment_id = newer

    def _wait_for_newer(self) -> None:
        now = time.monotonic()
        self.handover_since = self.handover_since or now
        if now - self.handover_since > RECONNECT:
            raise MoorageError(
                f"Deployment {self.deployment_id} of {self.what} was superseded, but the master names no "
                "newer deployment; 'moorage stack show' shows where the services are"
            )
        time.sleep(POLL)

    def _lost(self, err: MoorageError) -> None:
        now = time.monotonic()
        if self.lost_since is None:
            self.lost_since = now
            err_console().print(f"Lost the master ({err.message}); reconnecting ...")
        elif now - self.lost_since > RECONNECT:
            raise MoorageError(
                f"The master has not answered for {RECONNECT:.0f}s while following deployment "
                f"{self.deployment_id} of {self.what}; it goes on without the CLI: 'moorage stack show' "
                "shows where it is"
            ) from err
        time.sleep(POLL)


def watch_deployment(client: MasterClient, deployment_id: str, what: str) -> tuple[dict[str, Any], float]:
    """Show the deployment's progress until it ends (or ``TIMEOUT``); the last view of it (the
    superseding one's, if another took over) and the seconds it took."""
    started = time.monotonic()
    follower = _Follower(client, deployment_id, what)
    deployment = follower.get()
    if sys.stdout.isatty():
        from rich.live import Live

        with Live(_table(deployment), console=console(), refresh_per_second=8) as live:
            while deployment["state"] == "running" and time.monotonic() - started < TIMEOUT:
                deployment = follower.get(WAIT)
                live.update(_table(deployment))
    else:
        seen: set[tuple[str, str, str, str]] = set()
        while True:
            for row in _rows(deployment):
                if row not in seen and row[2] != "scheduled":
                    seen.add(row)
                    print("  " + "  ".join(part for part in row if part), flush=True)
            if deployment["state"] != "running" or time.monotonic() - started > TIMEOUT:
                break
            deployment = follower.get(WAIT)
    return deployment, time.monotonic() - started


def follow_deployment(client: MasterClient, deployment_id: str, what: str) -> None:
    """Wait for the deployment, showing progress; raise (exit 1) if any instance did not make it."""
    deployment, took = watch_deployment(client, deployment_id, what)
    if deployment["state"] == "running":
        raise MoorageError(
            f"Deployment of {what} still running after {TIMEOUT:.0f}s; 'moorage stack show' follows it"
        )
    if deployment["state"] == "success":
        count = sum(len(s["containers"]) for s in deployment["services"])
        console().print(f"Deployed {what}: {count} instance(s) running ({took:.1f}s)")
        return
    err_console().print(f"Deployment of {what} did not fully succeed ({took:.1f}s):")
    for line in (deployment["message"] or "").splitlines():
        err_console().print(f"  {line}")
    raise MoorageError(f"{what}: some instances are not running; see the reasons above")


def follow_started(client: MasterClient, started: dict[str, Any], what: str, no_wait: bool) -> None:
    """After a call that may have started a deployment: follow it, or say what happened."""
    deployment = started.get("deployment")
    if deployment is None:
        print(f"{what}: stored, not deployed ('moorage stack deploy' or 'moorage service deploy' deploys it)")
    elif no_wait:
        print(f"{what}: deployment {deployment} started")
    else:
        follow_deployment(client, deployment, what)


def uptime(container: dict[str, Any]) -> str:
    if container["state"] != "running" or not container["started_at"]:
        return "-"
    return ago(container["started_at"]).removesuffix(" ago")


def _mib(count: float) -> str:
    return f"{count / 2**20:.1f} MiB"


def move_line(move: dict[str, Any], rate: float | None) -> str:
    """``phase  done/total MiB  rate  ETA``: what a move shows while it runs."""
    done, total = move["bytes_done"], max(move["bytes_total"], move["bytes_done"])
    parts = [f"{move['phase']:<7}", f"{_mib(done)} / {_mib(total)}"]
    if rate:
        parts.append(f"{_mib(rate)}/s")
        if move["phase"] == "copy" and total > done:
            parts.append(f"ETA {int((total - done) / rate)}s")
    return "  ".join(parts)


def follow_move(
    client: MasterClient, grid: str, volume: str, move: dict[str, Any], *, quiet: bool = False
) -> dict[str, Any]:
    """Wait for a move, showing its phase, bytes done of total, rate and ETA; its last state."""
    url = f"/v1/volumes/{grid}/{volume}/moves/{move['id']}"
    started = time.monotonic()
    samples: list[tuple[float, int]] = []
    live = None
    if sys.stdout.isatty() and not quiet:
        from rich.live import Live
        from rich.text import Text

        live = Live(Text(move_line(move, None)), console=console(), refresh_per_second=8)
        live.start()
    last = ""
    try:
        while move["state"] == "running":
            time.sleep(POLL)
            try:
                move = client.get(url)
            except MoorageError as err:
                if time.monotonic() - started > TIMEOUT * 8:
                    raise
                err_console().print(f"Lost the master ({err.message}); reconnecting ...")
                time.sleep(1)
                continue
            now = time.monotonic()
            samples = [(t, b) for t, b in samples if now - t < 5] + [(now, move["bytes_done"])]
            rate = (
                (samples[-1][1] - samples[0][1]) / (samples[-1][0] - samples[0][0])
                if len(samples) > 1
                else None
            )
            line = move_line(move, rate)
            if live is not None:
                from rich.text import Text

                live.update(Text(line))
            elif not quiet and move["phase"] != last:
                print(f"  {line}", flush=True)
                last = move["phase"]
    finally:
        if live is not None:
            live.stop()
    took = time.monotonic() - started
    if not quiet:
        if move["state"] == "succeeded":
            downtime = ""
            if move.get("stopped_at") and move.get("switched_at"):
                from datetime import datetime

                stopped = datetime.fromisoformat(move["stopped_at"])
                switched = datetime.fromisoformat(move["switched_at"])
                downtime = f", stopped for {(switched - stopped).total_seconds():.1f}s"
            console().print(f"Moved {move['docker_volume']} to {move['target']} ({took:.1f}s{downtime})")
        else:
            err_console().print(f"Move of {move['docker_volume']} failed: {move['message']}")
    return move

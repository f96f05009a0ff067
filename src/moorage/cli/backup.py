"""moorage volume backup create|ls|show|restore|verify|forget|jobs — restic snapshots of volumes.

Backups, restores and verifies are jobs the agents run; the commands follow them (bytes, files and
rate while they go; ``--no-wait`` returns at once) and end with the outcome.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from moorage.cli.context import CliContext
from moorage.cli.options import Json
from moorage.cli.output import ago, console, err_console, print_json, table
from moorage.errors import MoorageError

if TYPE_CHECKING:
    from moorage.client.api import MasterClient

__all__ = ["app", "human_bytes"]

app = typer.Typer(
    help="Backups of volume data (restic snapshots), restores and verifies.", no_args_is_help=True
)

POLL = 0.5
TIMEOUT = 6 * 3600.0
NoWaitJob = Annotated[bool, typer.Option("--no-wait", help="Start the job and return at once")]


def human_bytes(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def _line(job: dict[str, Any], elapsed: float) -> str:
    progress = job.get("progress") or {}
    done, total = int(progress.get("bytes_done") or 0), int(progress.get("bytes_total") or 0)
    total = total or int((job.get("details") or {}).get("size") or 0)
    files, files_total = int(progress.get("files_done") or 0), int(progress.get("files_total") or 0)
    rate = done / elapsed if elapsed > 0 else 0.0
    what = f"{job['kind']} {job['volume']} ({', '.join(job['docker_volumes'])}) on {job['node']}"
    amount = f"{human_bytes(done)}" + (f" / {human_bytes(total)}" if total else "")
    counted = (
        f", {files}" + (f"/{files_total}" if files_total else "") + " files" if files_total or files else ""
    )
    return f"{what}: {amount}{counted}, {human_bytes(rate)}/s"


def follow_jobs(client: MasterClient, grid: str, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Poll the jobs until each ends, showing progress on stderr; their last states."""
    started = time.monotonic()
    current = {job["id"]: job for job in jobs}
    live = sys.stderr.isatty()
    last_print = 0.0
    while any(j["state"] == "running" for j in current.values()):
        if time.monotonic() - started > TIMEOUT:
            raise MoorageError("The jobs are still running; 'moorage volume backup jobs' shows them")
        time.sleep(POLL)
        for job_id, job in list(current.items()):
            if job["state"] == "running":
                current[job_id] = client.get(f"/v1/backup-jobs/{grid}/{job_id}")
        elapsed = time.monotonic() - started
        if live or elapsed - last_print >= 5:
            last_print = elapsed
            for job in current.values():
                if job["state"] == "running":
                    err_console().print(_line(job, elapsed), end="\r" if live else "\n")
    if live:
        err_console().print(" " * 100, end="\r")
    return list(current.values())


def _report(jobs: list[dict[str, Any]], json: bool) -> None:
    if json:
        print_json(jobs)
    failed = [j for j in jobs if j["state"] == "failed"]
    if not json:
        for job in jobs:
            progress = job.get("progress") or {}
            seconds = float(progress.get("seconds") or 0.0)
            size = int(progress.get("bytes") or 0)
            if job["state"] == "done":
                rate = f", {human_bytes(size / seconds)}/s" if seconds > 0 and size else ""
                taken = f": {', '.join(b[:8] for b in job['backups'])}" if job.get("backups") else ""
                amount = f" {human_bytes(size)}, {progress.get('files', 0)} files" if size else ""
                console().print(
                    f"{job['kind']} {job['volume']} on {job['node']} done in {seconds:.1f}s{amount}{rate}{taken}"
                )
    for job in failed:
        err_console().print(f"{job['kind']} {job['volume']} on {job['node']} failed: {job['error']}")
    if failed:
        raise typer.Exit(1)


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Volume name")],
    docker_volumes: Annotated[
        list[str] | None, typer.Argument(help="Only these of its Docker volumes (default: all)")
    ] = None,
    quiesce: Annotated[
        str, typer.Option("--quiesce", help="pause (default), stop or none: the containers using it")
    ] = "pause",
    pause_limit: Annotated[
        float, typer.Option("--pause-limit", help="Seconds after which the watchdog unpauses them")
    ] = 600.0,
    no_wait: NoWaitJob = False,
    json: Json = False,
) -> None:
    """Back up a volume: one restic snapshot per Docker volume, taken on its node."""
    cli: CliContext = ctx.obj
    body = {
        "volume": name,
        "docker_volumes": docker_volumes or [],
        "quiesce": quiesce,
        "pause_limit": pause_limit,
    }
    with cli.client() as client:
        jobs = client.post(f"/v1/backups/{cli.grid}", body)["jobs"]
        if no_wait:
            if json:
                print_json(jobs)
            else:
                for job in jobs:
                    print(
                        f"backup job {job['id']} started on {job['node']}: {', '.join(job['docker_volumes'])}"
                    )
            return
        _report(follow_jobs(client, cli.grid, jobs), json)


@app.command("ls")
def ls(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Only this volume's backups")] = None,
    json: Json = False,
) -> None:
    """List backups: id, volume, Docker volume, node, time, size."""
    cli: CliContext = ctx.obj
    with cli.client() as client:
        backups = client.get(f"/v1/backups/{cli.grid}", params={"volume": name} if name else None)["backups"]
    if json:
        print_json(backups)
        return
    table(
        ["ID", "VOLUME", "DOCKER VOLUME", "NODE", "TIME", "SIZE", "ADDED", "VERIFIED"],
        [
            (
                b["short_id"],
                b["volume"],
                b["docker_volume"],
                b["node"],
                b["time"],
                human_bytes(b["size"]),
                human_bytes(b["added"]),
                _verified(b),
            )
            for b in backups
        ],
    )


def _verified(backup: dict[str, Any]) -> str:
    if backup.get("verify_error"):
        return "FAILED"
    return ago(backup["verified_at"]) if backup.get("verified_at") else "-"


@app.command("show")
def show(
    ctx: typer.Context,
    backup_id: Annotated[str, typer.Argument(help="Backup id (or its start)")],
    json: Json = False,
) -> None:
    """Show a backup: size, files, added bytes, duration, node, quiesce, verified-at."""
    cli: CliContext = ctx.obj
    with cli.client() as client:
        b = client.get(f"/v1/backups/{cli.grid}/{backup_id}")
    if json:
        print_json(b)
        return
    lines = [
        f"{b['id']}:",
        f"  volume: {b['volume']}",
        f"  docker_volume: {b['docker_volume']}",
        f"  node: {b['node']}",
        f"  time: {b['time']} ({ago(b['time'])})",
        f"  size: {human_bytes(b['size'])} ({b['size']} bytes)",
        f"  files: {b['files']}",
        f"  added: {human_bytes(b['added'])} ({b['added']} bytes)",
        f"  duration: {b['duration']:.1f}s",
        f"  quiesce: {b['quiesce']}",
        f"  group: {b['group']}",
        f"  verified_at: {b['verified_at'] or '-'}",
    ]
    if b.get("verify_error"):
        lines.append(f"  verify_failed: {b['verify_error']}")
    console().print("\n".join(lines))


@app.command("restore")
def restore(
    ctx: typer.Context,
    backup_id: Annotated[str, typer.Argument(help="Backup id (or its start)")],
    to: Annotated[
        str | None, typer.Option("--to", help="Node to restore onto (its instance moves there)")
    ] = None,
    as_volume: Annotated[
        str | None, typer.Option("--as", help="Restore into this new Docker volume instead")
    ] = None,
    stop: Annotated[
        bool, typer.Option("--stop", help="Stop the instance using the volume for the restore")
    ] = False,
    no_wait: NoWaitJob = False,
    json: Json = False,
) -> None:
    """Restore a backup: over its volume (--stop), onto another node (--to) or into a new volume (--as)."""
    cli: CliContext = ctx.obj
    body: dict[str, Any] = {"stop": stop}
    if to is not None:
        body["to"] = to
    if as_volume is not None:
        body["as"] = as_volume
    with cli.client() as client:
        job = client.post(f"/v1/backups/{cli.grid}/{backup_id}/restore", body)
        if no_wait:
            print_json(job) if json else print(f"restore job {job['id']} started on {job['node']}")
            return
        _report(follow_jobs(client, cli.grid, [job]), json)


@app.command("verify")
def verify(
    ctx: typer.Context,
    backup_id: Annotated[str, typer.Argument(help="Backup id (or its start)")],
    no_wait: NoWaitJob = False,
    json: Json = False,
) -> None:
    """Restore a backup into a scratch volume on another node and check it; record the outcome."""
    cli: CliContext = ctx.obj
    with cli.client() as client:
        job = client.post(f"/v1/backups/{cli.grid}/{backup_id}/verify")
        if no_wait:
            print_json(job) if json else print(f"verify job {job['id']} started on {job['node']}")
            return
        _report(follow_jobs(client, cli.grid, [job]), json)


@app.command("forget")
def forget(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Volume name")],
    keep_last: Annotated[int, typer.Option("--keep-last", help="Keep the last N")] = 0,
    keep_daily: Annotated[int, typer.Option("--keep-daily", help="Keep the last of each of N days")] = 0,
    keep_weekly: Annotated[int, typer.Option("--keep-weekly", help="... of N weeks")] = 0,
    keep_monthly: Annotated[int, typer.Option("--keep-monthly", help="... of N months")] = 0,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would go")] = False,
    json: Json = False,
) -> None:
    """Apply restic's retention policy to the volume's backups (per Docker volume); print what goes."""
    cli: CliContext = ctx.obj
    body = {
        "volume": name,
        "keep_last": keep_last,
        "keep_daily": keep_daily,
        "keep_weekly": keep_weekly,
        "keep_monthly": keep_monthly,
        "dry_run": dry_run,
    }
    with cli.client() as client:
        result = client.post(f"/v1/backup-forget/{cli.grid}", body)
    if json:
        print_json(result)
        return
    verb = "would remove" if dry_run else "removed"
    for snapshot in result["remove"]:
        console().print(f"{verb} {snapshot['short_id']} {snapshot['time']}")
    console().print(f"kept {len(result['keep'])}, {verb} {len(result['remove'])}")


@app.command("jobs")
def jobs(ctx: typer.Context, json: Json = False) -> None:
    """List the latest backup, restore and verify jobs."""
    cli: CliContext = ctx.obj
    with cli.client() as client:
        found = client.get(f"/v1/backup-jobs/{cli.grid}")["jobs"]
    if json:
        print_json(found)
        return
    table(
        ["ID", "KIND", "VOLUME", "NODE", "STATE", "CREATED", "ERROR"],
        [
            (j["id"], j["kind"], j["volume"], j["node"], j["state"], j["created_at"], j["error"] or "")
            for j in found
        ],
    )

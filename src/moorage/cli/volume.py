"""moorage volume create|ls|show|rm (Kontena's commands and output), move and purge."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from moorage.cli.backup import app as backup_app
from moorage.cli.confirm import require_force
from moorage.cli.context import CliContext
from moorage.cli.options import Force, Json
from moorage.cli.output import print_error, print_json, print_warning, size_text, table
from moorage.errors import InvalidInput, MoorageError

if TYPE_CHECKING:
    from moorage.client.api import MasterClient

__all__ = ["app", "parse_pairs", "volume_text"]

app = typer.Typer(
    help="Managed named volumes: defined once, created on the node where they are used.", no_args_is_help=True
)
app.add_typer(backup_app, name="backup")


def parse_pairs(option: str, values: list[str] | None) -> dict[str, str]:
    """``k=v`` pairs split on the first ``=`` only (``o=addr=1.2.3.4,rw`` keeps its value)."""
    pairs: dict[str, str] = {}
    for value in values or []:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise InvalidInput.one(option, f"'{value}' is not key=value, e.g. {option} type=nfs")
        pairs[key] = rest
    return pairs


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Volume name")],
    scope: Annotated[str | None, typer.Option("--scope", help="instance, stack or grid")] = None,
    driver: Annotated[str | None, typer.Option("--driver", help="Volume driver, e.g. local")] = None,
    driver_opt: Annotated[
        list[str] | None, typer.Option("--driver-opt", help="k=v option for the driver (repeat)")
    ] = None,
    label: Annotated[list[str] | None, typer.Option("--label", help="k=v label (repeat)")] = None,
    topology: Annotated[
        str | None,
        typer.Option(
            "--topology",
            help=(
                "Where its data can be used from: node, zone, region or grid (default: grid for a "
                "driver the nodes report global, else node)"
            ),
        ),
    ] = None,
    on_node_lost: OnNodeLostOption = None,
    backup_schedule: Annotated[
        str | None,
        typer.Option("--backup-schedule", help="Back it up on this cron schedule (UTC), e.g. '0 3 * * *'"),
    ] = None,
    backup_keep: Annotated[
        str | None,
        typer.Option("--backup-keep", help="Keep after each scheduled backup, e.g. daily=7,weekly=4"),
    ] = None,
    json: Json = False,
) -> None:
    """Define a volume. Nothing is created on any node until a service that uses it is deployed."""
    if scope is None:
        raise MoorageError("Missing option '--scope': give --scope instance, stack or grid")
    if driver is None:
        raise MoorageError("Missing option '--driver': give --driver local (or another volume driver)")
    body = {
        "name": name,
        "scope": scope,
        "driver": driver,
        "driver_opts": parse_pairs("--driver-opt", driver_opt),
        "labels": parse_pairs("--label", label),
    }
    if topology is not None:
        body["topology"] = topology
    if on_node_lost is not None:
        body["on_node_lost"] = on_node_lost
    cli: CliContext = ctx.obj
    _check_schedule(backup_schedule, backup_keep)
    with cli.client() as client:
        volume = client.post(f"/v1/volumes/{cli.grid}", body)
        if backup_schedule is not None:
            schedule = {"backup_schedule": backup_schedule, "backup_keep": backup_keep}
            client.request("PUT", f"/v1/volume-backups/{cli.grid}/{name}", schedule)
        _warn_without_backups(client, cli.grid, volume, backup_schedule is not None)
    if json:
        print_json(volume)
    else:
        print(volume["name"])


OnNodeLostOption = Annotated[
    str | None,
    typer.Option(
        "--on-node-lost",
        help=(
            "What its data does once its node is declared lost (moorage node declare-lost): wait (the "
            "default), restore (its latest backup, on another node) or recreate (empty, on another node)"
        ),
    ),
]


def _warn_without_backups(client: MasterClient, grid: str, volume: dict[str, Any], scheduled: bool) -> None:
    """A ``restore`` volume is only as good as its backups: say so when the grid has no backup
    repository, or the volume no schedule (accepted either way: both can come later)."""
    if volume.get("on_node_lost") != "restore":
        return
    if not client.get(f"/v1/grids/{grid}").get("backup_repo"):
        print_warning(
            f"grid {grid} has no backup repository yet ('moorage grid backup-repo set URL'): until "
            f"{volume['name']} has a backup, an instance of a node declared lost waits for that node"
        )
    elif not scheduled and not client.get(f"/v1/volume-backups/{grid}/{volume['name']}").get("schedule"):
        print_warning(
            f"volume {volume['name']} has no backup schedule ('moorage volume update {volume['name']} "
            "--backup-schedule CRON'): a restore brings back its latest backup, however old"
        )


def _check_schedule(schedule: str | None, keep: str | None) -> None:
    if keep is not None and schedule is None:
        raise InvalidInput.one(
            "--backup-keep", "is applied after scheduled backups: give --backup-schedule too"
        )


@app.command("update")
def update(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Volume name")],
    on_node_lost: OnNodeLostOption = None,
    backup_schedule: Annotated[
        str | None,
        typer.Option("--backup-schedule", help="Cron schedule (UTC), e.g. '0 3 * * *'; 'none' ends it"),
    ] = None,
    backup_keep: Annotated[
        str | None,
        typer.Option("--backup-keep", help="Keep after each scheduled backup, e.g. daily=7,weekly=4"),
    ] = None,
    json: Json = False,
) -> None:
    """Change what a volume's data does on a lost node, its backup schedule and retention."""
    if backup_schedule is None and on_node_lost is None:
        raise MoorageError(
            "Nothing to change: give --on-node-lost wait|restore|recreate, "
            "or --backup-schedule CRON (or 'none') [--backup-keep K]"
        )
    if backup_schedule is not None:
        _check_schedule(backup_schedule, backup_keep)
    elif backup_keep is not None:
        _check_schedule(None, backup_keep)
    schedule = None if backup_schedule == "none" else backup_schedule
    cli: CliContext = ctx.obj
    out: dict[str, Any] = {}
    with cli.client() as client:
        if on_node_lost is not None:
            volume = client.request("PATCH", f"/v1/volumes/{cli.grid}/{name}", {"on_node_lost": on_node_lost})
            out["volume"] = volume
        if backup_schedule is not None:
            out["backups"] = client.request(
                "PUT",
                f"/v1/volume-backups/{cli.grid}/{name}",
                {"backup_schedule": schedule, "backup_keep": backup_keep if schedule else None},
            )
        if on_node_lost is not None:
            _warn_without_backups(client, cli.grid, out["volume"], bool(schedule))
    if json:
        print_json(out["backups"] if list(out) == ["backups"] else out)
        return
    if "volume" in out:
        print(f"{name}: on_node_lost {out['volume']['on_node_lost']}")
    if "backups" in out:
        print(backup_text(out["backups"]))


def backup_text(status: dict[str, Any]) -> str:
    """The backup lines of ``volume show``: schedule, last backup and its age, last verify."""
    from moorage.cli.output import ago

    lines = ["  backups:"]
    schedule = status.get("schedule")
    lines.append(
        f"    schedule: {schedule or '-'}" + (f" (keep {status['keep']})" if status.get("keep") else "")
    )
    last = status.get("last_backup")
    lines.append(
        f"    last_backup: {last['id'][:8]} {last['time']} ({ago(last['time'])})"
        if last
        else "    last_backup: -"
    )
    verify = status.get("last_verify")
    if verify is None:
        lines.append("    last_verify: -")
    elif verify.get("error"):
        lines.append(f"    last_verify: {verify['id'][:8]} FAILED {verify['verified_at']}: {verify['error']}")
    else:
        lines.append(
            f"    last_verify: {verify['id'][:8]} ok {verify['verified_at']} ({ago(verify['verified_at'])})"
        )
    return "\n".join(lines)


@app.command("ls")
def ls(
    ctx: typer.Context,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Names only")] = False,
    long: Annotated[bool, typer.Option("--long", "-l", help="Also instances and services")] = False,
    json: Json = False,
) -> None:
    """List volumes."""
    cli: CliContext = ctx.obj
    with cli.client() as client:
        volumes = client.get(f"/v1/volumes/{cli.grid}")["volumes"]
    if json:
        print_json(volumes)
    elif quiet:
        for volume in volumes:
            print(volume["name"])
    elif long:
        table(
            [
                "NAME",
                "SCOPE",
                "DRIVER",
                "TOPOLOGY",
                "ON_NODE_LOST",
                "STACK",
                "CREATED",
                "INSTANCES",
                "UNUSED",
                "DRIFTED",
                "SERVICES",
            ],
            [
                (
                    v["name"],
                    v["scope"],
                    v["driver"],
                    v.get("topology", "-"),
                    v.get("on_node_lost", "-"),
                    v.get("stack") or "-",
                    v["created_at"],
                    ",".join(f"{i['name']}@{i['node']}" for i in v["instances"]) or "-",
                    str(sum(i.get("state") == "unused" for i in v["instances"])),
                    str(sum(bool(i.get("drift")) for i in v["instances"])),
                    ",".join(s["id"] for s in v["services"]) or "-",
                )
                for v in volumes
            ],
        )
    else:
        table(
            ["NAME", "SCOPE", "DRIVER", "CREATED"],
            [(v["name"], v["scope"], v["driver"], v["created_at"]) for v in volumes],
        )


def volume_text(volume: dict[str, Any]) -> str:
    lines = [
        f"{volume['name']}:",
        f"  id: {volume['id']}",
        f"  created: {volume['created_at']}",
        f"  scope: {volume['scope']}",
        f"  driver: {volume['driver']}",
        "  driver_opts:",
        *[f"    {k}: {v}" for k, v in volume["driver_opts"].items()],
    ]
    if volume["labels"]:
        lines += ["  labels:", *[f"    {k}: {v}" for k, v in volume["labels"].items()]]
    lines.append("  instances:")
    for instance in volume["instances"]:
        lines += [f"    - name: {instance['name']}", f"      node: {instance['node']}"]
        lines.append(f"      zone: {instance['zone'] or '-'}")
        if instance.get("region"):
            lines.append(f"      region: {instance['region']}")
        if instance["state"] == "unused":
            lines.append(f"      state: unused (since {instance.get('unused_since') or '?'})")
        elif instance["state"] != "present":
            lines.append(
                f"      state: {instance['state']}" + (f" ({instance['error']})" if instance["error"] else "")
            )
        for field, values in (instance.get("drift") or {}).items():
            lines.append(
                f"      drifted: {field} on the node is {_shown(values['engine'])}, "
                f"the definition says {_shown(values['definition'])}"
            )
    lines += ["  services:", *[f"    - {s['id']}" for s in volume["services"]]]
    # after Kontena's fields, which keep their order and adjacency
    lines.append(f"  topology: {volume.get('topology', '-')}")
    lines.append(f"  on_node_lost: {volume.get('on_node_lost', '-')}")
    if volume.get("stack"):
        lines.append(f"  stack: {volume['stack']}")
    lines += _kept_copies(volume)
    return "\n".join(lines)


def _kept_copies(volume: dict[str, Any]) -> list[str]:
    """``retired:`` (sources moves left) and ``stale:`` (copies superseded on a node declared lost)."""
    lines: list[str] = []
    for key, kept in (("retired", "kept"), ("stale", "kept, with its data (its node was declared lost)")):
        if not volume.get(key):
            continue
        lines.append(f"  {key}:")
        for copy in volume[key]:
            lines += [
                f"    - name: {copy['name']}",
                f"      node: {copy['node']}",
                f"      since: {copy['since']}",
            ]
            if copy.get("state") == "purging":
                lines.append("      state: purging")
            elif key == "stale":
                lines.append(f"      state: {kept}")
    if volume.get("restored"):
        from moorage.model.node_loss import restored_line

        lines.append("  restored:")
        for item in volume["restored"]:
            at = datetime.fromisoformat(item["restored_at"])
            taken = datetime.fromisoformat(item["backup_time"]) if item.get("backup_time") else None
            line = (
                restored_line(taken, at, item["backup"]) if taken else f"restored backup {item['backup'][:8]}"
            )
            lines += [
                f"    - name: {item['name']}",
                f"      node: {item['node']}",
                f"      data: {line} (at {at.strftime('%Y-%m-%d %H:%M')} UTC, {item['lost_node']} declared lost)",
            ]
    return lines


def _shown(value: object) -> str:
    """A driver name as it is; options as ``k=v,k=v`` by key (``{}`` for none)."""
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in sorted(value.items())) or "{}"
    return str(value)


@app.command("show")
def show(ctx: typer.Context, name: str, json: Json = False) -> None:
    """Show a volume: its definition, its instances (Docker volume and node) and the services using it."""
    cli: CliContext = ctx.obj
    with cli.client() as client:
        volume = client.get(f"/v1/volumes/{cli.grid}/{name}")
        backups = client.get(f"/v1/volume-backups/{cli.grid}/{name}")
    if json:
        print_json({**volume, "backups": backups})
    else:
        print(volume_text(volume))
        print(backup_text(backups))


@app.command("rm")
def rm(
    ctx: typer.Context,
    names: Annotated[list[str], typer.Argument(help="Volume names")],
    force: Force = False,
) -> None:
    """Remove volumes no service uses; agents then delete their Docker volumes (and data)."""
    cli: CliContext = ctx.obj
    require_force(force, f"Remove volume(s) {', '.join(names)} and the data in their Docker volumes?")
    failed = False
    with cli.client() as client:
        for name in names:
            try:
                client.delete(f"/v1/volumes/{cli.grid}/{name}")
                print(f"Removed volume {name}")
            except MoorageError as err:
                print_error(err.message)
                failed = True
    if failed:
        raise typer.Exit(1)


@app.command("prune")
def prune(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Only this volume's unused instances")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be removed; remove nothing")
    ] = False,
    older_than: Annotated[
        str | None, typer.Option("--older-than", help="Only those unused for longer, e.g. 7d, 12h")
    ] = None,
    force: Force = False,
    json: Json = False,
) -> None:
    """Remove unused volume instances (no instance would use them: after a scale-down or a
    service's removal) and the data in their Docker volumes, which their agents delete."""
    from moorage.model.log_time import parse_duration

    body: dict[str, Any] = {"dry_run": True}
    if name is not None:
        body["volume"] = name
    if older_than is not None:
        try:
            body["older_than"] = parse_duration(older_than)
        except ValueError as err:
            raise InvalidInput.one("--older-than", str(err)) from None
    cli: CliContext = ctx.obj
    with cli.client() as client:
        found = client.post(f"/v1/volumes/{cli.grid}/unused/prune", body)["pruned"]
        if not dry_run and found:
            listed = ", ".join(f"{p['name']} on {p['node']}" for p in found)
            require_force(force, f"Remove {listed} and the data in them?")
            found = client.post(f"/v1/volumes/{cli.grid}/unused/prune", {**body, "dry_run": False})["pruned"]
    if json:
        print_json(found)
        return
    verb = "Would remove" if dry_run else "Removed"
    if not found:
        print("No unused volume instances" + (" to remove" if not dry_run else ""))
    for pruned in found:
        print(
            f"{verb} {pruned['name']} on {pruned['node']} (volume {pruned['volume']}, unused since {pruned['unused_since']})"
        )


def plan_text(plan: dict[str, Any]) -> str:
    source = f"{plan['source']}" + (f" (zone {plan['source_zone']})" if plan["source_zone"] else "")
    target = f"{plan['target']}" + (f" (zone {plan['target_zone']})" if plan["target_zone"] else "")
    how = (
        "copy (first while it runs, then what changed once it stopped), verified by manifest"
        if plan["method"] == "copy"
        else "re-attach: its driver's storage is shared inside its domain, no copy"
    )
    lines = [
        f"Move {plan['docker_volume']} of volume {plan['volume']}: {source} -> {target}",
        f"  method: {how}",
    ]
    if plan["method"] == "copy":
        lines.append(f"  data: {size_text(plan['bytes'])} in {plan['files']} files")
    lines.append(f"  stops: {', '.join(plan['instances']) or 'no instance'}")
    lines.append(f"  target: {plan['target']}")
    return "\n".join(lines)


@app.command("move")
def move(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Volume name")],
    docker_volume: Annotated[
        str, typer.Argument(help="Its instance's Docker volume ('volume show' lists them)")
    ],
    to: Annotated[str | None, typer.Option("--to", help="The node to move it to")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show the plan")] = False,
    json: Json = False,
) -> None:
    """Move a volume instance's data to another node, and its instance with it. The source copy is
    kept (retired) until 'moorage volume purge'."""
    from moorage.cli.progress import follow_move

    if to is None:
        raise InvalidInput.one("--to", "give the node to move it to: --to NODE")
    cli: CliContext = ctx.obj
    with cli.client() as client:
        started = client.post(
            f"/v1/volumes/{cli.grid}/{name}/moves",
            {"docker_volume": docker_volume, "to": to, "dry_run": dry_run},
        )
        if json and (dry_run or started["move"] is None):
            print_json(started)
            return
        if not json:
            print(plan_text(started["plan"]), flush=True)
        if started["move"] is None:
            return
        final = follow_move(client, cli.grid, name, started["move"], quiet=json)
    if json:
        print_json(final)
    if final["state"] != "succeeded":
        raise MoorageError(f"move of {docker_volume} failed: {final['message']}")


@app.command("purge")
def purge(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Volume name")],
    docker_volumes: Annotated[
        list[str] | None,
        typer.Argument(help="Retired or stale copies to remove (default: all of the volume's)"),
    ] = None,
    force: Force = False,
) -> None:
    """Remove retired copies moves left and stale copies on nodes declared lost (their data is
    deleted on their nodes); nothing else ever removes a stale copy."""
    cli: CliContext = ctx.obj
    which = ", ".join(docker_volumes) if docker_volumes else f"every retired and stale copy of volume {name}"
    require_force(force, f"Remove {which} and the data in it?")
    with cli.client() as client:
        out = client.post(f"/v1/volumes/{cli.grid}/{name}/purge", {"docker_volumes": docker_volumes or []})
    for copy in out["purging"]:
        print(f"Purging retired copy {copy}")
    if not out["purging"]:
        print(f"Volume {name} has no retired or stale copies")

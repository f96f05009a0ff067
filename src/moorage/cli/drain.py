"""``moorage node drain``: print what moves where and what stays, follow the deployment and the
volume moves (as ``volume move`` shows them), and end with what stayed on the node (exit 1 when
anything did, each failed move with its reason)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from moorage.cli.output import console, err_console, size_text
from moorage.cli.progress import follow_move, watch_deployment
from moorage.errors import MoorageError

if TYPE_CHECKING:
    from moorage.client.api import MasterClient

__all__ = ["data_size", "follow_drain", "moving_line", "print_drain_plan"]

_HOW = {
    "replan": "re-planned on {to}",
    "reattach": "to {to}, its volume instance {volume_instance} re-attaching there",
    "data": "to {to}, moved with its data ({size}) by a volume move of {volume_instance}{job}",
    "stop": "stops: a daemon service runs one instance per node that takes instances",
}


def data_size(count: int | None) -> str:
    """``N bytes``, and the size a person reads when it is a KiB or more."""
    if count is None:
        return "size unknown"
    return f"{count} bytes" if count < 1024 else f"{count} bytes, {size_text(count)}"


def moving_line(item: dict[str, Any]) -> str:
    job = f" (job {item['job']})" if item.get("job") else ""
    how = _HOW[item["how"]].format(
        to=item.get("to") or "-",
        volume_instance=item.get("volume_instance"),
        job=job,
        size=data_size(item.get("bytes")),
    )
    return f"{item['instance']}: {how}"


def print_drain_plan(report: dict[str, Any]) -> None:
    node = report["node"]["name"]
    moving, staying = report["moving"], report["staying"]
    if report["dry_run"]:
        head = f"Draining {node} would move {len(moving)} instance(s) and leave {len(staying)} on it"
    else:
        head = f"Draining {node}: {len(moving)} instance(s) to move, {len(staying)} staying; it takes no new instances"
    console().print(head)
    for item in moving:
        console().print(f"  {moving_line(item)}")
    if staying:
        console().print(f"{'Would stay' if report['dry_run'] else 'Staying'} on {node}:")
        for item in staying:
            console().print(f"  {item['instance']}: {item['reason']}")


def _follow_moves(client: MasterClient, grid: str, node: str, report: dict[str, Any]) -> dict[str, str]:
    """Follow each of the drain's volume moves to its end, one after another (the master runs a
    few at once; a later one may be over when its turn to be shown comes). Instance -> why its
    move failed, for those that did."""
    failed: dict[str, str] = {}
    for item in report["moving"]:
        if item["how"] != "data" or not item.get("job"):
            continue
        console().print(
            f"Moving {item['instance']} to {item['to']} with its data ({item['volume_instance']}):"
        )
        move = client.get(f"/v1/volumes/{grid}/{item['volume']}/moves/{item['job']}")
        final = follow_move(client, grid, item["volume"], move)
        if final["state"] != "succeeded":
            failed[item["instance"]] = (
                f"volume move {item['job']} to {item['to']} failed: {final['message']}; "
                f"it runs on {node} as before"
            )
    return failed


def follow_drain(client: MasterClient, grid: str, path: str, report: dict[str, Any]) -> None:
    """Follow the drain's deployment and its volume moves, then ask the master what is still on
    the node: exit 1 listing each instance that stayed and why (a failed move with its reason),
    and each that did not start on its new node."""
    node = report["node"]["name"]
    failed: list[str] = []
    if report["deployment"]:
        deployment, _took = watch_deployment(client, report["deployment"], f"drain of {node}")
        if deployment["state"] == "running":
            raise MoorageError(
                f"The drain of {node} is still moving instances; 'moorage node drain {node} --dry-run' "
                "shows what is left"
            )
        # its lines for instances that stay, or that leave with their data, are not its to say
        told = {item["instance"] for item in report["staying"]}
        told |= {item["instance"] for item in report["moving"] if item["how"] == "data"}
        failed = [
            line
            for line in (deployment["message"] or "").splitlines()
            if line.partition(":")[0].partition(" on ")[0] not in told
        ]
    moves_failed = _follow_moves(client, grid, node, report)
    after = client.post(path, params={"dry_run": "true"})
    left = [
        f"{item['instance']}: {item['reason']}"
        for item in after["staying"]
        if item["instance"] not in moves_failed
    ]
    left += [
        f"{item['instance']}: not moved yet ({moving_line(item)})"
        for item in after["moving"]
        if item["instance"] not in moves_failed
    ]
    left += [f"{instance}: {why}" for instance, why in moves_failed.items()]
    if not left and not failed:
        console().print(f"Drained {node}: no instance left on it")
        return
    if failed:
        err_console().print(f"Moved off {node} but not running on the new node:")
        for line in failed:
            err_console().print(f"  {line}")
    if left:
        err_console().print(f"Staying on {node}:")
        for line in left:
            err_console().print(f"  {line}")
    raise MoorageError(
        f"{node} is drained, but {len(left)} instance(s) stayed on it and {len(failed)} did not start elsewhere"
    )

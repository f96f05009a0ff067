"""``moorage node drain``: print what moves where and what stays, follow the moves, and end with
what stayed on the node (exit 1 when anything did)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from moorage.cli.output import console, err_console
from moorage.cli.progress import watch_deployment
from moorage.errors import MoorageError

if TYPE_CHECKING:
    from moorage.client.api import MasterClient

__all__ = ["follow_drain", "moving_line", "print_drain_plan"]

_HOW = {
    "replan": "re-planned on {to}",
    "reattach": "to {to}, its volume instance {volume_instance} re-attaching there",
    "data": "its data (volume instance {volume_instance}) moves with it{job}",
    "stop": "stops: a daemon service runs one instance per node that takes instances",
}


def moving_line(item: dict[str, Any]) -> str:
    job = f" (volume move {item['job']})" if item.get("job") else ""
    how = _HOW[item["how"]].format(
        to=item.get("to") or "-", volume_instance=item.get("volume_instance"), job=job
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


def follow_drain(client: MasterClient, path: str, report: dict[str, Any]) -> None:
    """Follow the drain's deployment, then ask the master what is still on the node: exit 1
    listing each instance that stayed and why, and each that did not start on its new node."""
    node = report["node"]["name"]
    failed: list[str] = []
    if report["deployment"]:
        deployment, _took = watch_deployment(client, report["deployment"], f"drain of {node}")
        if deployment["state"] == "running":
            raise MoorageError(
                f"The drain of {node} is still moving instances; 'moorage node drain {node} --dry-run' "
                "shows what is left"
            )
        staying = {item["instance"] for item in report["staying"]}
        failed = [
            line
            for line in (deployment["message"] or "").splitlines()
            if line.partition(":")[0].partition(" on ")[0] not in staying
        ]
    after = client.post(path, params={"dry_run": "true"})
    left = [f"{item['instance']}: {item['reason']}" for item in after["staying"]]
    left += [f"{item['instance']}: not moved yet ({moving_line(item)})" for item in after["moving"]]
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

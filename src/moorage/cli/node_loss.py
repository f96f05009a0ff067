"""What ``moorage node declare-lost`` prints: the node, what each of its volume instances does
(waits, is restored, starts empty), and, as the restores end, the age of the data each restored."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from moorage.cli.output import print_error
from moorage.model.node_loss import age_text, restored_line

if TYPE_CHECKING:
    from moorage.client.api import MasterClient

__all__ = ["follow_restores", "print_declared"]

_VERB = {"waiting": "waits", "restoring": "restoring", "recreating": "recreated EMPTY", "held": "held"}


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value)


def print_declared(report: dict[str, Any]) -> None:
    node = report["node"]
    seen = age_text((_when(report["lost_at"]) - _when(report["last_seen_at"])).total_seconds())
    how = "online, --force" if report.get("was_online") else f"last seen {seen} before"
    print(f"{node['name']} declared lost ({how})")
    for item in report["outcomes"]:
        print(f"  {item['docker_volume']} ({item['policy']}): {item['message']}")
    if not report["outcomes"]:
        print("  it holds no instance-scope volume instance: nothing waits for it")


def follow_restores(client: MasterClient, grid: str, report: dict[str, Any]) -> bool:
    """Follow the restores the declaration started until each ends; print the age of the data
    each restored. False when one failed."""
    from moorage.cli.backup import follow_jobs

    restoring = [o for o in report["outcomes"] if o["action"] == "restoring" and o.get("job")]
    if not restoring:
        return True
    jobs = [client.get(f"/v1/backup-jobs/{grid}/{o['job']}") for o in restoring]
    ended = {job["id"]: job for job in follow_jobs(client, grid, jobs)}
    ok = True
    for item in restoring:
        job = ended[item["job"]]
        who = ", ".join(item["instances"]) or item["docker_volume"]
        if job["state"] == "done":
            finished = _when(job["finished_at"]) if job.get("finished_at") else None
            line = restored_line(_when(item["backup_time"]), finished, item["backup"])
            print(f"{who}: {line}, on {item['to']}; it starts there")
        else:
            ok = False
            print_error(
                f"{who}: restore of {item['docker_volume']} onto {item['to']} failed: {job.get('error')}; it waits for {report['node']['name']}"
            )
    return ok

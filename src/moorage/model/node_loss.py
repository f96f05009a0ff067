"""What happens to a volume's data when the node holding it is lost: the volume's declared policy
(``on_node_lost``), and how a lost node, its last-seen age and a restored backup's age read.

| policy     | once ``moorage node declare-lost NODE`` says the node is gone, each instance-scope     |
|            | volume instance of the volume on NODE (whose data no other node can use)                |
|------------|------------------------------------------------------------------------------------------|
| ``wait``   | waits for NODE to come back: its instance stays pending (the default)                  |
| ``restore``| is restored from its latest backup on another node the driver and topology allow, and  |
|            | its instance starts there; with no backup it waits, and says so                          |
| ``recreate``| starts empty on another node (caches); the instance's events say so                    |

Only ``recreate`` ever gives an instance an empty volume in place of data it had, and only once
the operator declared the node lost. The copy left on the lost node is superseded (stale): kept
with its data until ``moorage volume purge``; the node's agent never starts its instance again.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum

from moorage.model.quoting import shown
from moorage.model.volume import VolumeScope

__all__ = [
    "LAST_SEEN_RE",
    "PINNED_NODE_LOST",
    "PINNED_NODE_OFFLINE",
    "WAYS_OUT_DECLARE",
    "WAYS_OUT_DECLARE_AGAIN",
    "WAYS_OUT_NOT_RESTORED",
    "WAYS_OUT_WAIT",
    "WHAT_RECREATE",
    "WHAT_RESTORE",
    "OnNodeLost",
    "age_text",
    "aged",
    "last_seen_phrase",
    "on_node_lost_error",
    "pinned_node_reason",
    "restored_line",
]


class OnNodeLost(StrEnum):
    WAIT = "wait"
    RESTORE = "restore"
    RECREATE = "recreate"


def on_node_lost_error(value: str, scope: str) -> str | None:
    """None when a volume of ``scope`` may have policy ``value``, else why not."""
    if value not in {p.value for p in OnNodeLost}:
        return f"Unknown on_node_lost '{shown(value)}', must be one of wait, restore, recreate"
    if value != OnNodeLost.WAIT and scope != VolumeScope.INSTANCE:
        return (
            f"on_node_lost {value} applies to instance-scope volumes only: a {shown(scope)}-scope volume "
            "has a volume instance on every node that uses it, so an instance placed elsewhere uses that "
            "node's; use wait (the default)"
        )
    return None


def age_text(seconds: float) -> str:
    """``7 h 12 m``, ``3 m 5 s``, ``40 s``, ``2 d 4 h``: the two largest units."""
    whole = max(0, int(seconds))
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if whole >= size or (unit == "s" and not parts):
            parts.append(f"{whole // size} {unit}")
            whole %= size
        if len(parts) == 2:
            break
    return " ".join(parts)


_STAMP = "%Y-%m-%d %H:%M:%S UTC"
LAST_SEEN_RE = re.compile(r"last seen (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC")
"""How a reason stored in the store says when a node was last seen (``aged`` reads it)."""


def last_seen_phrase(at: datetime | None) -> str:
    """``last seen 2026-12-03 14:05:03 UTC`` as a reason is stored: the time, not an age, since a
    stored reason is read long after it was written; views turn it into an age (``aged``)."""
    if at is None:
        return "never seen"
    return f"last seen {at.astimezone(UTC).strftime(_STAMP)}"


def aged(reason: str | None, now: datetime | None = None) -> str | None:
    """A stored reason as a view shows it: ``last seen 2026-12-03 14:05:03 UTC`` becomes
    ``last seen 3 m 12 s ago (14:05:03 UTC)``, the age at ``now``."""
    if reason is None or "last seen " not in reason:
        return reason
    moment = now or datetime.now(UTC)

    def with_age(found: re.Match[str]) -> str:
        at = datetime.strptime(found.group(1) + " UTC", _STAMP).replace(tzinfo=UTC)
        return f"last seen {age_text((moment - at).total_seconds())} ago ({at.strftime('%H:%M:%S')} UTC)"

    return LAST_SEEN_RE.sub(with_age, reason)


# --- why an instance waits for the node holding its data ------------------------------------------

PINNED_NODE_OFFLINE = "volume instance {volume_instance} lives on node {node}, which is offline ({seen})"
PINNED_NODE_LOST = "volume instance {volume_instance} lives on node {node}, declared lost ({seen})"
# what follows either, by the volume's on_node_lost (model.node_loss), and whether the node was declared lost
WAYS_OUT_WAIT = (
    "; its volume {volume} waits for it (on_node_lost wait): bring {node} back, or declare it lost with "
    "a restore or recreate policy ('moorage volume update {volume} --on-node-lost restore|recreate', "
    "then 'moorage node declare-lost {node}')"
)
WAYS_OUT_DECLARE = (
    ": bring {node} back, or run 'moorage node declare-lost {node}' to {what} on another node "
    "(volume {volume}: on_node_lost {policy})"
)
WHAT_RESTORE = "restore its latest backup"
WHAT_RECREATE = "start it with an empty volume"
WAYS_OUT_NOT_RESTORED = (
    "; it was not restored (it has no backup, its restore failed, or {node} was declared lost before "
    "the volume's policy was restore: 'moorage events --volume {volume}'), so it waits: bring {node} back, "
    "or run 'moorage node declare-lost {node}' again to try again, after 'moorage volume update {volume} "
    "--on-node-lost recreate' to start it with an empty volume"
)
WAYS_OUT_DECLARE_AGAIN = (
    ": its volume {volume} is on_node_lost {policy} now; run 'moorage node declare-lost {node}' again "
    "to {what} on another node, or bring {node} back"
)


def pinned_node_reason(
    volume_instance: str, volume: str, node: str, seen: str, *, lost: bool, policy: str
) -> str:
    """Why an instance waits for the offline (or lost) node holding its volume instance, and the
    ways out its volume's ``on_node_lost`` policy gives: ``seen`` is ``last seen <time> UTC``
    (``model.node_loss.last_seen_phrase``; views show it as an age)."""
    head = (PINNED_NODE_LOST if lost else PINNED_NODE_OFFLINE).format(
        volume_instance=volume_instance, node=node, seen=seen
    )
    what = WHAT_RESTORE if policy == "restore" else WHAT_RECREATE
    if policy not in ("restore", "recreate"):
        tail = WAYS_OUT_WAIT
    elif not lost:
        tail = WAYS_OUT_DECLARE
    elif policy == "restore":
        tail = WAYS_OUT_NOT_RESTORED
    else:
        tail = WAYS_OUT_DECLARE_AGAIN
    return head + tail.format(node=node, volume=volume, policy=policy, what=what)


def restored_line(backup_time: datetime, now: datetime | None = None, backup_id: str | None = None) -> str:
    """``restored backup of 02:00, 7 h 12 m old`` (the day too when it is not today's)."""
    moment = now or datetime.now(UTC)
    at = backup_time.astimezone(UTC)
    when = at.strftime("%H:%M") if at.date() == moment.date() else at.strftime("%Y-%m-%d %H:%M")
    which = f" {backup_id[:8]}" if backup_id else ""
    return f"restored backup{which} of {when} UTC, {age_text((moment - at).total_seconds())} old"

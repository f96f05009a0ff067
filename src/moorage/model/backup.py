"""Backups of volume data, as plain values: repository URLs, quiesce modes, retention policies,
snapshot tags and the restic host a volume instance's snapshots are kept under.

restic does the backing up (encryption, de-duplication, compression, retention); these are the
rules Moorage adds around it, in one place for the master, the agent and the CLI.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

__all__ = [
    "SNAPSHOT_PATH",
    "Quiesce",
    "RetentionPolicy",
    "is_local_repository",
    "last_slot",
    "repository_error",
    "restic_host",
    "schedule_error",
    "snapshot_tags",
]

SNAPSHOT_PATH = "/volume"  # where a helper container mounts the Docker volume: every snapshot's path
_REMOTE = re.compile(r"^(sftp|rest|s3|b2|azure|gs|swift|rclone):")
_KEEP_KEYS = ("last", "hourly", "daily", "weekly", "monthly", "yearly")
_TAG_VALUE = re.compile(r"^[^,\s]{1,200}$")


class Quiesce(StrEnum):
    """What happens to the containers that mount a volume while it is read."""

    PAUSE = "pause"  # paused (cgroup freezer) for the read; a watchdog unpauses them after a limit
    STOP = "stop"  # stopped for the read, started again after
    NONE = "none"  # read while they run (crash-consistent at best)


def is_local_repository(url: str) -> bool:
    """A repository on a path of the node (or an NFS mount on it): ``/srv/backups``, ``local:/srv``."""
    return url.startswith("/") or url.startswith("local:/")


def local_path(url: str) -> str:
    return url.removeprefix("local:")


def repository_error(url: str) -> str | None:
    """Why ``url`` is no repository URL Moorage can hand to restic; None when it is one."""
    if not url or len(url) > 1000:
        return "give a repository URL of 1 to 1000 characters, e.g. /srv/moorage-backups or s3:host/bucket"
    if any(ch.isspace() and ch != " " for ch in url) or "\x00" in url:
        return "a repository URL holds no control characters"
    if is_local_repository(url):
        path = local_path(url)
        if "/../" in path + "/" or path.rstrip("/") == "":
            return f"{url} is not a folder to keep backups in: give an absolute path such as /srv/moorage-backups"
        return None
    if _REMOTE.match(url):
        return None
    return (
        f"{url} is not a restic repository URL: give an absolute path (/srv/moorage-backups) or "
        "sftp:, rest:, s3:, b2:, azure:, gs:, swift: or rclone: followed by its address"
    )


def restic_host(grid: str, docker_volume: str) -> str:
    """The restic host of a volume instance's snapshots: restic finds the parent snapshot of an
    incremental backup, and applies a retention policy, per host and path."""
    return f"{grid}.{docker_volume}"


def snapshot_tags(
    *, grid: str, volume: str, docker_volume: str, node: str, time: datetime, group: str
) -> list[str]:
    """The tags of one snapshot: grid, volume, Docker volume name, node, time and group id."""
    return [
        f"grid={grid}",
        f"volume={volume}",
        f"docker_volume={docker_volume}",
        f"node={node}",
        f"time={time.strftime('%Y-%m-%dT%H:%M:%SZ')}",
        f"group={group}",
    ]


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Which snapshots ``restic forget`` keeps: the last N, and one per hour/day/week/month/year
    for the last N of each. Nothing given keeps everything (restic refuses an empty policy)."""

    last: int = 0
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0

    @property
    def empty(self) -> bool:
        return not any(self.as_dict().values())

    def as_dict(self) -> dict[str, int]:
        return {key: getattr(self, key) for key in _KEEP_KEYS}

    def restic_args(self) -> list[str]:
        return [arg for key, n in self.as_dict().items() if n for arg in (f"--keep-{key}", str(n))]

    def text(self) -> str:
        return ",".join(f"{key}={n}" for key, n in self.as_dict().items() if n) or "-"

    @classmethod
    def parse(cls, text: str) -> RetentionPolicy:
        """``daily=7,weekly=4`` (keys: last, hourly, daily, weekly, monthly, yearly); raises ValueError."""
        values: dict[str, int] = {}
        for part in (p.strip() for p in text.split(",") if p.strip()):
            key, sep, number = part.partition("=")
            if not sep or key not in _KEEP_KEYS:
                raise ValueError(
                    f"'{part}' is not KEY=N with KEY one of {', '.join(_KEEP_KEYS)}, e.g. daily=7,weekly=4"
                )
            if not number.isdigit() or not 0 < int(number) <= 100000:
                raise ValueError(f"'{part}': N must be a whole number from 1 to 100000")
            values[key] = int(number)
        policy = cls(**values)
        if policy.empty:
            raise ValueError("give at least one KEY=N, e.g. daily=7,weekly=4")
        return policy

    @classmethod
    def of(cls, values: dict[str, int] | None) -> RetentionPolicy | None:
        if not values:
            return None
        return cls(**{k: int(v) for k, v in values.items() if k in _KEEP_KEYS})


def tag_value_error(value: str) -> str | None:
    return None if _TAG_VALUE.match(value) else "holds a comma or a space"


def restore_target_error(
    topology: str, zone: str | None, region: str | None, node: str, labels: dict[str, str]
) -> str | None:
    """Why a volume instance's data may not be restored onto ``node`` as that volume instance,
    as for a move: a ``zone`` (``region``) volume stays in the zone (region) recorded on it."""
    if topology == "zone" and zone is not None and labels.get("zone") != zone:
        return f"its volume's topology is zone and its data belongs in zone {zone}; {node} is not in it"
    if topology == "region" and region is not None and labels.get("region") != region:
        return f"its volume's topology is region and its data belongs in region {region}; {node} is not in it"
    return None


_DOCKER_VOLUME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{1,254}$")


def docker_volume_name_error(name: str) -> str | None:
    if _DOCKER_VOLUME.match(name):
        return None
    return (
        "a Docker volume name is 2 to 255 letters, digits, '_', '.' or '-', starting with a letter or digit"
    )


def schedule_error(expression: str) -> str | None:
    """Why ``expression`` is no cron expression (five fields, read by croniter); None if it is one."""
    from croniter import croniter

    if len(expression.split()) != 5 or not croniter.is_valid(expression):
        return (
            f"'{expression}' is not a cron expression: give five fields (minute hour day month weekday), "
            "e.g. '0 3 * * *' for every day at 03:00 UTC"
        )
    return None


def last_slot(expression: str, now: datetime) -> datetime:
    """The latest time at or before ``now`` the schedule names (UTC)."""
    from croniter import croniter

    slot: datetime = croniter(expression, now).get_prev(datetime)
    return slot

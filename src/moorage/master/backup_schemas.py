"""Wire schemas of backups: the repository, backups, jobs, restores, retention. No schema has a
field for the repository's password on the way out."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field

from moorage.master.schemas import Text, VolumeName
from moorage.store.backups import BackupView, JobView

__all__ = [
    "BackupCreate",
    "BackupIdPath",
    "BackupList",
    "BackupOut",
    "ForgetIn",
    "ForgetOut",
    "JobIdPath",
    "JobList",
    "JobOut",
    "RepoIn",
    "RepoOut",
    "RestoreIn",
    "backup_out",
    "job_out",
]

BackupIdPath = Annotated[
    str, Path(min_length=1, max_length=64, pattern="^[0-9a-f]+$", description="Backup id (or its start)")
]
JobIdPath = Annotated[str, Path(min_length=1, max_length=32, pattern="^[0-9a-f]+$", description="Job id")]
DockerVolumeName = Annotated[str, Field(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{1,254}$")]
NodeName = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RepoIn(_In):
    url: Annotated[str, Text, Field(min_length=1, max_length=1000, description="A restic repository URL")]
    password: Annotated[str, Text, Field(min_length=1, max_length=4096, description="Its password")]


class RepoOut(BaseModel):
    grid: str
    url: str
    initialized: bool = Field(description="True when no repository was there and one was made")


class BackupCreate(_In):
    volume: VolumeName
    docker_volumes: list[DockerVolumeName] = Field(default_factory=list, max_length=1000)
    quiesce: Literal["pause", "stop", "none"] = "pause"
    pause_limit: float = Field(
        default=600.0, gt=0, le=86400, description="Seconds before the watchdog unpauses"
    )


class RestoreIn(_In):
    to: NodeName | None = Field(default=None, description="Node to restore onto (default: the volume's)")
    as_volume: DockerVolumeName | None = Field(
        default=None, alias="as", description="Restore into this new Docker volume instead"
    )
    stop: bool = Field(default=False, description="Stop the instance using the volume for the restore")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ForgetIn(_In):
    volume: VolumeName
    keep_last: int = Field(default=0, ge=0, le=100000, strict=True)
    keep_hourly: int = Field(default=0, ge=0, le=100000, strict=True)
    keep_daily: int = Field(default=0, ge=0, le=100000, strict=True)
    keep_weekly: int = Field(default=0, ge=0, le=100000, strict=True)
    keep_monthly: int = Field(default=0, ge=0, le=100000, strict=True)
    keep_yearly: int = Field(default=0, ge=0, le=100000, strict=True)
    dry_run: bool = False


class SnapshotRef(BaseModel):
    id: str
    short_id: str
    time: str | None
    tags: list[str]


class ForgetOut(BaseModel):
    dry_run: bool
    keep: list[SnapshotRef]
    remove: list[SnapshotRef]


class BackupOut(BaseModel):
    id: str
    short_id: str
    volume: str
    docker_volume: str
    node: str
    time: datetime
    size: int = Field(description="Bytes of the files in the snapshot")
    files: int
    added: int = Field(description="Bytes this backup added to the repository")
    duration: float
    quiesce: str
    group: str
    verified_at: datetime | None
    verify_error: str | None


class BackupList(BaseModel):
    backups: list[BackupOut]


class JobOut(BaseModel):
    id: str
    kind: str
    state: str
    volume: str
    node: str
    docker_volumes: list[str]
    backup_id: str | None
    progress: dict[str, Any]
    details: dict[str, Any]
    message: str | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    backups: list[str]


class JobList(BaseModel):
    jobs: list[JobOut]


def backup_out(view: BackupView) -> BackupOut:
    return BackupOut(
        id=view.id,
        short_id=view.id[:8],
        volume=view.volume,
        docker_volume=view.docker_volume,
        node=view.node,
        time=view.time,
        size=view.size,
        files=view.files,
        added=view.added,
        duration=view.duration,
        quiesce=view.quiesce,
        group=view.group_id,
        verified_at=view.verified_at,
        verify_error=view.verify_error,
    )


def job_out(view: JobView) -> JobOut:
    return JobOut(
        id=view.id,
        kind=view.kind,
        state=view.state,
        volume=view.volume,
        node=view.node,
        docker_volumes=list(view.docker_volumes),
        backup_id=view.backup_id,
        progress=view.progress,
        details=view.details,
        message=view.message,
        error=view.error,
        created_at=view.created_at,
        finished_at=view.finished_at,
        backups=list(view.backups),
    )


def snapshot_ref(doc: dict[str, Any]) -> SnapshotRef:
    return SnapshotRef(
        id=str(doc.get("id", "")),
        short_id=str(doc.get("short_id", "")),
        time=doc.get("time"),
        tags=[str(t) for t in doc.get("tags") or []],
    )


class ScheduleIn(_In):
    backup_schedule: Annotated[str, Text, Field(max_length=100)] | None = Field(
        default=None, description="A cron expression (UTC), e.g. '0 3 * * *'; null: no schedule"
    )
    backup_keep: Annotated[str, Text, Field(max_length=200)] | None = Field(
        default=None, description="Retention after each scheduled backup, e.g. daily=7,weekly=4"
    )


class LastBackup(BaseModel):
    id: str
    time: datetime


class LastVerify(BaseModel):
    id: str
    verified_at: datetime | None
    error: str | None


class VolumeBackupsOut(BaseModel):
    volume: str
    schedule: str | None
    keep: str | None
    last_slot: datetime | None
    last_backup: LastBackup | None
    last_verify: LastVerify | None

"""SQL tables of the master's state. Only ``moorage.store`` touches these; the API speaks in wire
schemas and the core in ``moorage.model`` types."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from moorage.model.names import LABEL_VALUE_MAX

__all__ = [
    "AdminTokenRow",
    "BackupJobRow",
    "BackupRow",
    "Base",
    "DeploymentRow",
    "EventRow",
    "GridRow",
    "InstanceRow",
    "LeaseRow",
    "MasterRow",
    "NodeRow",
    "RetiredVolumeRow",
    "ServiceRow",
    "StackRevisionRow",
    "StackRow",
    "UTCDateTime",
    "VolumeInstanceRow",
    "VolumeMoveRow",
    "VolumeRow",
]

HOLDING = "host_ports IS NOT NULL OR memory IS NOT NULL OR cpus IS NOT NULL"  # keep as in 0005


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and always read back timezone-aware (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use datetime.now(UTC)")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: UTCDateTime()}


class AdminTokenRow(Base):
    """A named admin token (one per person or CI); only its SHA-256 hash is kept."""

    __tablename__ = "admin_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]


class GridRow(Base):
    __tablename__ = "grids"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    join_token_hash: Mapped[str] = mapped_column(String(128), unique=True)  # SHA-256 of the join token
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # where the grid's backups go (a restic repository URL) and its password, for the agents:
    # never returned by the API (0012)
    backup_repo: Mapped[str | None] = mapped_column(Text, default=None)
    backup_password: Mapped[str | None] = mapped_column(Text, default=None)


class NodeRow(Base):
    __tablename__ = "nodes"
    __table_args__ = (
        UniqueConstraint("grid_id", "name", name="uq_nodes_grid_name"),
        Index("ix_nodes_grid_updated", "grid_id", "updated_at"),  # planning's snapshot check
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # chosen by the agent, kept on disk
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))  # online | offline
    status_since: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    labels: Mapped[dict[str, Any]]
    info: Mapped[dict[str, Any]]  # engine_version, cpus, memory, drivers: [{name, version, scope}]
    # SHA-256 of the node's own credential (issued at first join); None: joined before 0006
    credential_hash: Mapped[str | None] = mapped_column(String(64), unique=True, index=True, default=None)
    # ``moorage node drain``: takes no instance until ``undrain`` (migration 0011)
    drained: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # ``moorage node declare-lost``: when the operator said it is gone; None again once it is back (0015)
    lost_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # the master (``masters.id``) its agent is connected to, or was last; no foreign key (0014)
    master_id: Mapped[str | None] = mapped_column(String(32), index=True, default=None)


class StackRow(Base):
    """An installed stack; ``spec`` is its current revision's normalized stack (stack_to_dict)."""

    __tablename__ = "stacks"
    __table_args__ = (UniqueConstraint("grid_id", "name", name="uq_stacks_grid_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    revision: Mapped[int]
    spec: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class StackRevisionRow(Base):
    __tablename__ = "stack_revisions"
    __table_args__ = (UniqueConstraint("stack_id", "revision", name="uq_stack_revisions"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    stack_id: Mapped[int] = mapped_column(ForeignKey("stacks.id", ondelete="CASCADE"), index=True)
    revision: Mapped[int]
    spec: Mapped[dict[str, Any]]
    source: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class ServiceRow(Base):
    """A service; ``stack`` is the stack name, ``null`` for stand-alone services."""

    __tablename__ = "services"
    __table_args__ = (UniqueConstraint("grid_id", "stack", "name", name="uq_services_grid_stack_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id", ondelete="CASCADE"), index=True)
    stack: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64))
    spec: Mapped[
        dict[str, Any]
    ]  # one service of stack_to_dict, plus resolved "volumes": {alias: grid volume}
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class InstanceRow(Base):
    """One instance of a service: where it should run (node, config hash) and what its agent saw."""

    __tablename__ = "instances"
    __table_args__ = (
        UniqueConstraint("service_id", "number", name="uq_instances_service_number"),
        # the instances that hold something on their node: what a deployment reads of the others
        Index(
            "ix_instances_holding",
            "node_id",
            sqlite_where=text(HOLDING),
            postgresql_where=text(HOLDING),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))  # uq's first
    number: Mapped[int]
    node_id: Mapped[str | None] = mapped_column(ForeignKey("nodes.id", ondelete="SET NULL"), index=True)
    container: Mapped[dict[str, Any] | None] = mapped_column(
        JSON(none_as_null=True), nullable=True
    )  # desired ContainerSpec
    desired_hash: Mapped[str | None] = mapped_column(String(64))
    # what the desired container holds on its node, for the scheduler without parsing ``container``
    host_ports: Mapped[list[Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    memory: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    cpus: Mapped[float | None]
    state: Mapped[str] = mapped_column(String(16))  # pending|scheduled|created|running|exited|error|failed
    reason: Mapped[str | None] = mapped_column(Text)
    observed_hash: Mapped[str | None] = mapped_column(String(64))
    exit_code: Mapped[int | None]
    started_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class DeploymentRow(Base):
    __tablename__ = "deployments"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id", ondelete="CASCADE"), index=True)
    target: Mapped[str] = mapped_column(String(200))  # grid/stack or grid/stack/service
    service_ids: Mapped[list[Any]]
    state: Mapped[str] = mapped_column(String(16))  # running|success|error
    message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class VolumeRow(Base):
    """A grid volume definition (``moorage volume create``)."""

    __tablename__ = "volumes"
    __table_args__ = (UniqueConstraint("grid_id", "name", name="uq_volumes_grid_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    scope: Mapped[str] = mapped_column(String(16))
    driver: Mapped[str] = mapped_column(String(255))
    driver_opts: Mapped[dict[str, Any]]
    labels: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # node | zone | region | grid (model.volume.VolumeTopology), always stored (0008 filled it in)
    topology: Mapped[str] = mapped_column(String(16), server_default="node")
    # scheduled backups (0012): a cron expression, the retention applied after each, and the
    # slot of the last scheduled run (a master that was down runs a missed slot once)
    backup_schedule: Mapped[str | None] = mapped_column(String(100), default=None)
    backup_keep: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), default=None)
    backup_last_slot: Mapped[datetime | None] = mapped_column(default=None)
    # the stack that declared it in its stack file and owns it (its name); None: ``volume create``
    stack: Mapped[str | None] = mapped_column(String(64), default=None)
    # what becomes of its instance-scope data on a node declared lost: wait | restore | recreate
    # (model.node_loss.OnNodeLost; 0015)
    on_node_lost: Mapped[str] = mapped_column(String(16), default="wait", server_default="wait")


class VolumeInstanceRow(Base):
    """One real Docker volume on one node, made from a volume.

    ``state``: ``pending`` (recorded, the agent has not confirmed it), ``present``, ``missing``
    (the engine no longer has it), ``error`` (see ``error``), ``unused`` (no instance would use it,
    since ``unused_since``), ``removing`` (the volume was removed, or the volume instance pruned;
    the agent deletes the Docker volume and then the row goes). ``volume_id`` is cleared when the
    volume is removed, so removal survives the definition.
    """

    __tablename__ = "volume_instances"
    __table_args__ = (
        UniqueConstraint("node_id", "name", name="uq_volume_instances_node_name"),
        Index("ix_volume_instances_grid_name", "grid_id", "name"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    grid_id: Mapped[int] = mapped_column(
        ForeignKey("grids.id", ondelete="CASCADE")
    )  # ix_..._grid_name's first
    volume_id: Mapped[int | None] = mapped_column(ForeignKey("volumes.id", ondelete="SET NULL"), index=True)
    node_id: Mapped[str] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"))  # uq's first
    name: Mapped[str] = mapped_column(String(255))  # the Docker volume name
    driver: Mapped[str] = mapped_column(String(255))
    driver_opts: Mapped[dict[str, Any]]
    # the zone= and region= labels of the node that made it (or that it re-attached to)
    zone: Mapped[str | None] = mapped_column(String(LABEL_VALUE_MAX))  # any label value (0009)
    region: Mapped[str | None] = mapped_column(String(LABEL_VALUE_MAX))
    state: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # since when no instance would use it (state ``unused``, store/volume_use.py); None otherwise
    unused_since: Mapped[datetime | None] = mapped_column(default=None)
    # the driver and options its node's engine has for the Docker volume (None: not reported)
    reported_driver: Mapped[str | None] = mapped_column(String(255), default=None)
    reported_driver_opts: Mapped[dict[str, Any] | None] = mapped_column(
        JSON(none_as_null=True), nullable=True, default=None
    )
    # the move holding it (0010): its instance stays stopped and is planned nowhere else meanwhile
    move_id: Mapped[str | None] = mapped_column(String(32), default=None)
    # the restore from backup of a lost node's data holding it (0015): its instance stays stopped
    # and is planned nowhere else until the restore ends (master/node_loss.py)
    restore_job: Mapped[str | None] = mapped_column(String(32), default=None)


class VolumeMoveRow(Base):
    """A move of one volume instance's data to another node (``moorage volume move``), a job.

    ``state``: running | succeeded | failed; ``phase`` where it is (plan, copy, check, stop, sync,
    verify, switch, done). ``instances``: what was stopped ({service_row_id, number, label,
    container}), so a failed move puts them back as they were. ``cleanup``: none | pending (the
    partial copy on the target is still to be removed, once its node is back) | done.
    """

    __tablename__ = "volume_moves"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id", ondelete="CASCADE"), index=True)
    volume: Mapped[str] = mapped_column(String(128))
    volume_instance_id: Mapped[str] = mapped_column(String(32), index=True)
    docker_name: Mapped[str] = mapped_column(String(255))
    source_node_id: Mapped[str] = mapped_column(String(64))
    target_node_id: Mapped[str] = mapped_column(String(64))
    source_node: Mapped[str] = mapped_column(String(128))  # names, kept for the job's history
    target_node: Mapped[str] = mapped_column(String(128))
    method: Mapped[str] = mapped_column(String(16))  # copy | reattach
    state: Mapped[str] = mapped_column(String(16), index=True)
    phase: Mapped[str] = mapped_column(String(16))
    bytes_total: Mapped[int] = mapped_column(BigInteger)
    bytes_done: Mapped[int] = mapped_column(BigInteger)
    files: Mapped[int] = mapped_column(BigInteger)
    instances: Mapped[list[Any]]
    message: Mapped[str | None] = mapped_column(Text)
    cleanup: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    stopped_at: Mapped[datetime | None]
    switched_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    master_id: Mapped[str | None] = mapped_column(String(32))  # the master running it (0016)


class RetiredVolumeRow(Base):
    """A copy of a volume instance's data kept on a node, never deleted by an agent on its own:
    ``why`` ``moved`` (the source a move left; purged by ``moorage volume purge`` or after the
    retention period) or ``stale`` (superseded on a node declared lost: its instance runs
    elsewhere now; purged only by ``moorage volume purge``); ``state`` kept | purging."""

    __tablename__ = "retired_volumes"
    __table_args__ = (UniqueConstraint("node_id", "name", name="uq_retired_volumes_node_name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id", ondelete="CASCADE"), index=True)
    volume_id: Mapped[int | None] = mapped_column(ForeignKey("volumes.id", ondelete="SET NULL"), index=True)
    node_id: Mapped[str] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))  # the Docker volume name
    volume_instance_id: Mapped[str] = mapped_column(String(32))  # its label: what the agent checks
    driver: Mapped[str] = mapped_column(String(255))
    move_id: Mapped[str | None] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    since: Mapped[datetime]
    why: Mapped[str] = mapped_column(String(16), default="moved", server_default="moved")  # 0015


class EventRow(Base):
    """Something that happened in a grid (``moorage events``), newest last: ``id`` orders them and
    is the API's cursor. ``grid_id`` None: the master's own (tokens), shown with every grid's.
    The subject's ids are kept as they were when it happened (names, not foreign keys): an event
    outlives what it tells of. Kept within a bound per grid (``store/events.py``)."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_grid_id", "grid_id", "id"),
        {"sqlite_autoincrement": True},  # ids never reused: a cursor stays behind every new event
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id", ondelete="CASCADE"))
    time: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(40))  # model.events.EventKind
    message: Mapped[str] = mapped_column(Text)
    actor: Mapped[str | None] = mapped_column(String(64))  # the admin token's name, for what a user did
    stack: Mapped[str | None] = mapped_column(String(64))
    service: Mapped[str | None] = mapped_column(String(64))
    instance: Mapped[int | None]
    volume: Mapped[str | None] = mapped_column(String(128))
    volume_instance: Mapped[str | None] = mapped_column(String(32))
    node_id: Mapped[str | None] = mapped_column(String(64))
    node: Mapped[str | None] = mapped_column(String(128))
    deployment: Mapped[str | None] = mapped_column(String(32))


class BackupJobRow(Base):
    """Work an agent does on volume data for backups: ``backup`` (one pause window, one snapshot
    per Docker volume), ``restore``, ``verify``. ``state``: running | done | failed."""

    __tablename__ = "backup_jobs"
    __table_args__ = (Index("ix_backup_jobs_grid_created", "grid_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    volume: Mapped[str] = mapped_column(String(128))
    node_id: Mapped[str | None] = mapped_column(ForeignKey("nodes.id", ondelete="SET NULL"), index=True)
    node: Mapped[str] = mapped_column(String(128))  # the node's name when the job started
    docker_volumes: Mapped[list[Any]]
    backup_id: Mapped[str | None] = mapped_column(String(64))  # restore, verify: of which backup
    details: Mapped[dict[str, Any]]  # quiesce, pause limit, target of a restore
    progress: Mapped[dict[str, Any]]  # bytes_done, bytes_total, files_done, files_total, seconds
    message: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    master_id: Mapped[str | None] = mapped_column(String(32))  # the master running it (0016)


class BackupRow(Base):
    """One restic snapshot of one Docker volume, as Moorage took it (``id``: restic's full id)."""

    __tablename__ = "backups"
    __table_args__ = (Index("ix_backups_grid_volume", "grid_id", "volume", "time"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id", ondelete="CASCADE"))
    volume: Mapped[str] = mapped_column(String(128))
    docker_volume: Mapped[str] = mapped_column(String(255))
    volume_instance_id: Mapped[str | None] = mapped_column(String(32))
    node: Mapped[str] = mapped_column(String(128))
    group_id: Mapped[str] = mapped_column(String(32))  # the job: one pause window
    time: Mapped[datetime]
    size: Mapped[int] = mapped_column(BigInteger)
    files: Mapped[int] = mapped_column(BigInteger)
    added: Mapped[int] = mapped_column(BigInteger)
    duration: Mapped[float]
    quiesce: Mapped[str] = mapped_column(String(16))
    manifest: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    verified_at: Mapped[datetime | None]
    verify_error: Mapped[str | None] = mapped_column(Text)


class MasterRow(Base):
    """A running (or lately running) master process; ``seen_at`` is the store's clock at its last
    heartbeat. A new row per process start: the id is random."""

    __tablename__ = "masters"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    url: Mapped[str] = mapped_column(String(512))
    version: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime]
    seen_at: Mapped[datetime]
    # SHA-256 (hex) of the key it presents to reach another master's agents (0017; none before)
    link_key: Mapped[str | None] = mapped_column(String(64))


class LeaseRow(Base):
    """Once-only work (``leader``: rollouts, placing waiting instances, sweeping the nodes of dead
    masters) is done by the ``holder`` until ``expires_at`` (the store's clock). Each new holder
    takes the next ``epoch``; a write of once-only work checks holder and epoch in its own
    transaction (``store/masters.check_lease``), so a holder that lost the lease writes nothing."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(32))
    epoch: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime]

"""Deployment repository: a deployment's row from start to finish, and what its rollout reads.

A deployment is ``running`` from ``create_deployment`` until ``finish_deployment`` (``success`` or
``error`` with one line per instance that did not make it); a master that starts again ends the
ones it left running where they were (``unfinished_deployments``), batch by batch.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import case, delete, select, update
from sqlalchemy.orm import Session

from moorage.errors import NotFound
from moorage.model.deployment import SUPERSEDED
from moorage.model.events import EventKind
from moorage.model.stack import NULL_STACK, full_service_id
from moorage.model.states import InstanceState
from moorage.store.events import NewEvent, record_events
from moorage.store.instances import new_id
from moorage.store.services import ServiceView, service_views, stored_service
from moorage.store.tables import DeploymentRow, GridRow, InstanceRow, NodeRow, ServiceRow
from moorage.store.volume_use import refresh_use

__all__ = [
    "DeploymentSummary",
    "DeploymentView",
    "InstanceReport",
    "UnfinishedDeployment",
    "WaitingService",
    "create_deployment",
    "deployment_grid_id",
    "deployment_services",
    "finish_deployment",
    "instance_reports",
    "node_names",
    "recent_deployments",
    "remove_instances",
    "service_nodes",
    "services_pending_on_nodes",
    "show_deployment",
    "superseded_by",
    "unfinished_deployments",
    "waiting_services",
]


@dataclass(frozen=True, slots=True)
class DeploymentView:
    id: str
    target: str
    state: str
    message: str | None
    created_at: datetime
    finished_at: datetime | None
    services: list[ServiceView]  # in the deployment's order
    superseded_by: str | None = None  # the newer deployment that took over its services while it ran


@dataclass(frozen=True, slots=True)
class InstanceReport:
    """What the store holds of one instance while a rollout waits for it."""

    desired_hash: str | None
    observed_hash: str | None
    state: str
    reason: str | None
    exit_code: int | None
    node_id: str | None = None  # where its container is meant to run now


@dataclass(frozen=True, slots=True)
class UnfinishedDeployment:
    id: str
    grid: str
    service_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class WaitingService:
    grid: str
    service_row_id: int
    service_id: str  # grid/stack/service


def create_deployment(
    session: Session, grid_id: int, target: str, service_ids: Sequence[int], created_at: datetime
) -> str:
    """Record a ``running`` deployment of these services (in this order), begun at ``created_at``;
    returns its id."""
    row = DeploymentRow(
        id=new_id(),
        grid_id=grid_id,
        target=target,
        service_ids=list(service_ids),
        state="running",
        message=None,
        created_at=created_at,
        finished_at=None,
    )
    session.add(row)
    record_events(
        session,
        NewEvent(
            grid_id,
            EventKind.DEPLOYMENT_STARTED,
            f"deployment {row.id} of {_shown_target(target)} started",
            stack=_target_stack(target),
            deployment=row.id,
            time=created_at,
        ),
    )
    return row.id


def _target_stack(target: str) -> str | None:
    parts = target.split("/")
    return parts[1] if len(parts) > 1 else None


def _shown_target(target: str) -> str:
    """``grid/stack`` as ``stack stack``, ``grid/stack/service`` as ``service stack/service``."""
    parts = target.split("/")
    if len(parts) == 2:
        return f"stack {parts[1]}"
    if len(parts) == 3:
        return f"service {parts[2]}" if parts[1] == NULL_STACK else f"service {parts[1]}/{parts[2]}"
    return target


def finish_deployment(session: Session, deployment_id: str, state: str, lines: Sequence[str]) -> None:
    """Record how the deployment ended, and an event saying so (the first lines of what did not
    make it, for a failure)."""
    now = datetime.now(UTC)
    found = session.execute(
        update(DeploymentRow)
        .where(DeploymentRow.id == deployment_id)
        .values(state=state, message="\n".join(lines) or None, finished_at=now)
        .returning(DeploymentRow.grid_id, DeploymentRow.target, DeploymentRow.created_at)
    ).first()
    if found is None:
        return
    grid_id, target, created_at = found
    took = f" in {(now - created_at).total_seconds():.1f}s"
    what = f"deployment {deployment_id} of {_shown_target(target)}"
    if state == "success":
        kind, message = EventKind.DEPLOYMENT_SUCCEEDED, f"{what} succeeded{took}"
    elif lines and lines[-1] == SUPERSEDED:
        kind, message = EventKind.DEPLOYMENT_SUPERSEDED, f"{what} {SUPERSEDED}"
    else:
        shown = "; ".join(lines[:3]) + (f"; and {len(lines) - 3} more" if len(lines) > 3 else "")
        kind, message = EventKind.DEPLOYMENT_FAILED, f"{what} failed{took}: {shown}"
    record_events(
        session,
        NewEvent(grid_id, kind, message, stack=_target_stack(target), deployment=deployment_id, time=now),
    )


def unfinished_deployments(session: Session) -> list[UnfinishedDeployment]:
    """The deployments still ``running`` (a master stopped during them), oldest first."""
    rows = session.execute(
        select(DeploymentRow.id, GridRow.name, DeploymentRow.service_ids)
        .join(GridRow, GridRow.id == DeploymentRow.grid_id)
        .where(DeploymentRow.state == "running")
        .order_by(DeploymentRow.created_at)
    ).tuples()
    return [UnfinishedDeployment(str(i), grid, tuple(int(s) for s in ids)) for i, grid, ids in rows]


def service_nodes(session: Session, service_ids: Collection[int]) -> set[str]:
    """The nodes that instances of these services are meant to run on."""
    found = session.scalars(
        select(InstanceRow.node_id).where(
            InstanceRow.service_id.in_(service_ids), InstanceRow.node_id.is_not(None)
        )
    )
    return {node_id for node_id in found if node_id}


def deployment_grid_id(session: Session, deployment_id: str) -> int:
    row = session.get(DeploymentRow, deployment_id)
    if row is None:
        raise NotFound(f"Deployment {deployment_id} not found")
    return row.grid_id


def deployment_services(session: Session, service_ids: Sequence[int]) -> list[ServiceRow]:
    """The service rows among ``service_ids`` that still exist, in that order."""
    order = {sid: i for i, sid in enumerate(service_ids)}
    rows = list(session.scalars(select(ServiceRow).where(ServiceRow.id.in_(service_ids))))
    rows.sort(key=lambda r: order[r.id])
    return rows


def show_deployment(session: Session, deployment_id: str) -> DeploymentView:
    row = session.get(DeploymentRow, deployment_id)
    if row is None:
        raise NotFound(f"Deployment {deployment_id} not found")
    grid_row = session.get(GridRow, row.grid_id)
    assert grid_row is not None  # a grid's deployments go with it
    return DeploymentView(
        id=row.id,
        target=row.target,
        state=row.state,
        message=row.message,
        created_at=row.created_at,
        finished_at=row.finished_at,
        services=service_views(session, grid_row, deployment_services(session, row.service_ids)),
        superseded_by=superseded_by(session, row),
    )


def superseded_by(session: Session, row: DeploymentRow) -> str | None:
    """The newer deployment that took this one's services over: the first newer deployment of any
    of them, while this one still runs (it is about to stop) or once it stopped for it. None when
    there is none (yet: a deployment stops before the one that supersedes it is recorded)."""
    if row.state != "running" and not (row.message or "").endswith(SUPERSEDED):
        return None
    query = (
        select(DeploymentRow.id, DeploymentRow.service_ids)
        .where(DeploymentRow.grid_id == row.grid_id, DeploymentRow.created_at > row.created_at)
        .order_by(DeploymentRow.created_at)
    )
    mine = set(row.service_ids)
    for newer_id, service_ids in session.execute(query).tuples():
        if newer_id != row.id and mine & set(service_ids):
            return str(newer_id)
    return None


def remove_instances(session: Session, service_row_id: int, numbers: Collection[int]) -> set[str]:
    """Remove these instances of a service (a scale-down); returns the nodes that ran them.
    The volume instances they used stay, ``unused`` (``store/volume_use.py``)."""
    where = (InstanceRow.service_id == service_row_id, InstanceRow.number.in_(numbers))
    nodes = {n for n in session.scalars(select(InstanceRow.node_id).where(*where)) if n}
    session.execute(delete(InstanceRow).where(*where))
    service = session.get(ServiceRow, service_row_id)
    if service is not None:
        refresh_use(session, service.grid_id, stored_service(service).grid_volumes)
    return nodes


def waiting_services(session: Session) -> list[WaitingService]:
    """The services with an instance pending and no node, in every grid."""
    rows = session.execute(
        select(GridRow.name, ServiceRow.id, ServiceRow.stack, ServiceRow.name)
        .join(ServiceRow, ServiceRow.grid_id == GridRow.id)
        .where(
            ServiceRow.id.in_(
                select(InstanceRow.service_id).where(
                    InstanceRow.node_id.is_(None), InstanceRow.state == InstanceState.PENDING
                )
            )
        )
        .order_by(ServiceRow.id)
    ).tuples()
    return [
        WaitingService(grid, row_id, full_service_id(grid, stack, name)) for grid, row_id, stack, name in rows
    ]


def services_pending_on_nodes(session: Session) -> list[tuple[WaitingService, str]]:
    """The services with an instance pending on a node (its volume instance pins it there), and
    that node, in every grid: what a master that starts waits for to come back."""
    rows = session.execute(
        select(GridRow.name, ServiceRow.id, ServiceRow.stack, ServiceRow.name, InstanceRow.node_id)
        .join(ServiceRow, ServiceRow.grid_id == GridRow.id)
        .join(InstanceRow, InstanceRow.service_id == ServiceRow.id)
        .where(InstanceRow.node_id.is_not(None), InstanceRow.state == InstanceState.PENDING)
        .distinct()
        .order_by(ServiceRow.id)
    ).tuples()
    return [
        (WaitingService(grid, row_id, full_service_id(grid, stack, name)), node_id)
        for grid, row_id, stack, name, node_id in rows
        if node_id is not None
    ]


def instance_reports(
    session: Session, wanted: Collection[tuple[int, int]]
) -> dict[tuple[int, int], InstanceReport]:
    """What the store holds of these (service row id, instance number) pairs; removed ones are absent."""
    keys = set(wanted)
    return {
        (service_id, number): InstanceReport(desired, observed, state, reason, exit_code, node_id)
        for service_id, number, desired, observed, state, reason, exit_code, node_id in session.execute(
            select(
                InstanceRow.service_id,
                InstanceRow.number,
                InstanceRow.desired_hash,
                InstanceRow.observed_hash,
                InstanceRow.state,
                InstanceRow.reason,
                InstanceRow.exit_code,
                InstanceRow.node_id,
            ).where(InstanceRow.service_id.in_({service_id for service_id, _ in keys}))
        ).tuples()
        if (service_id, number) in keys
    }


def node_names(session: Session, node_ids: Collection[str]) -> dict[str, str]:
    """Node id -> name for the nodes among ``node_ids`` that exist."""
    found = session.execute(select(NodeRow.id, NodeRow.name).where(NodeRow.id.in_(sorted(node_ids))))
    return {node_id: name for node_id, name in found.tuples()}


@dataclass(frozen=True, slots=True)
class DeploymentSummary:
    """A deployment without its services: what a list of a grid's deployments shows."""

    id: str
    target: str
    state: str
    message: str | None
    created_at: datetime
    finished_at: datetime | None


def recent_deployments(session: Session, grid_row: GridRow, limit: int) -> list[DeploymentSummary]:
    """The grid's deployments in progress (``running``) first, then the latest finished, newest
    first within each; ``limit`` in all."""
    query = (
        select(
            DeploymentRow.id,
            DeploymentRow.target,
            DeploymentRow.state,
            DeploymentRow.message,
            DeploymentRow.created_at,
            DeploymentRow.finished_at,
        )
        .where(DeploymentRow.grid_id == grid_row.id)
        .order_by(case((DeploymentRow.state == "running", 0), else_=1), DeploymentRow.created_at.desc())
        .limit(limit)
    )
    return [DeploymentSummary(*row) for row in session.execute(query).tuples()]

"""Counts of what the store holds, by grid and state: what ``GET /metrics`` reports.

One query per family, each a ``GROUP BY`` the database answers from its rows without sending them
over: the cost of a scrape does not grow with the rows' size, only with the number of groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Float, case, cast, func, select
from sqlalchemy.orm import Session

from moorage.store.tables import DeploymentRow, GridRow, InstanceRow, NodeRow, ServiceRow, VolumeInstanceRow

__all__ = [
    "DurationTally",
    "deployment_durations",
    "deployment_states",
    "grid_names",
    "instance_states",
    "node_states",
    "volume_instance_states",
]


@dataclass(frozen=True, slots=True)
class DurationTally:
    """The finished deployments of one grid and outcome: how many took at most each bound (seconds,
    ascending; cumulative, as a Prometheus histogram counts), how many in all, and their sum."""

    grid: str
    state: str
    at_most: tuple[int, ...]  # one per bound
    count: int
    total_seconds: float


def grid_names(session: Session) -> list[str]:
    return list(session.scalars(select(GridRow.name).order_by(GridRow.name)))


def node_states(session: Session) -> list[tuple[str, str, int]]:
    """(grid, node status, nodes)."""
    query = (
        select(GridRow.name, NodeRow.status, func.count())
        .join(NodeRow, NodeRow.grid_id == GridRow.id)
        .group_by(GridRow.name, NodeRow.status)
    )
    return [(grid, state, count) for grid, state, count in session.execute(query).tuples()]


def instance_states(session: Session) -> list[tuple[str, str, str | None, int]]:
    """(grid, stored instance state, status of its node or None when it has none, instances): the
    caller shows a state the way views do (``moorage.store.services.shown_state``)."""
    query = (
        select(GridRow.name, InstanceRow.state, NodeRow.status, func.count())
        .select_from(InstanceRow)
        .join(ServiceRow, ServiceRow.id == InstanceRow.service_id)
        .join(GridRow, GridRow.id == ServiceRow.grid_id)
        .outerjoin(NodeRow, NodeRow.id == InstanceRow.node_id)
        .group_by(GridRow.name, InstanceRow.state, NodeRow.status)
    )
    return [(g, state, node, count) for g, state, node, count in session.execute(query).tuples()]


def volume_instance_states(session: Session) -> list[tuple[str, str, int]]:
    """(grid, volume instance state, volume instances): every Docker volume Moorage made, on any node."""
    query = (
        select(GridRow.name, VolumeInstanceRow.state, func.count())
        .join(VolumeInstanceRow, VolumeInstanceRow.grid_id == GridRow.id)
        .group_by(GridRow.name, VolumeInstanceRow.state)
    )
    return [(grid, state, count) for grid, state, count in session.execute(query).tuples()]


def deployment_states(session: Session) -> list[tuple[str, str, int]]:
    """(grid, deployment state, deployments); ``running`` ones are in progress."""
    query = (
        select(GridRow.name, DeploymentRow.state, func.count())
        .join(DeploymentRow, DeploymentRow.grid_id == GridRow.id)
        .group_by(GridRow.name, DeploymentRow.state)
    )
    return [(grid, state, count) for grid, state, count in session.execute(query).tuples()]


def _seconds(session: Session) -> ColumnElement[Any]:
    """A finished deployment's duration in seconds, in the store's own SQL."""
    if session.get_bind().dialect.name == "sqlite":  # timestamps kept as UTC text
        days = func.julianday(DeploymentRow.finished_at) - func.julianday(DeploymentRow.created_at)
        return cast(days * 86400.0, Float)
    return cast(func.extract("epoch", DeploymentRow.finished_at - DeploymentRow.created_at), Float)


def deployment_durations(session: Session, bounds: Sequence[float]) -> list[DurationTally]:
    """How long the finished deployments took, bucketed by ``bounds`` in the database."""
    seconds = _seconds(session)
    buckets = [func.sum(case((seconds <= bound, 1), else_=0)) for bound in bounds]
    query = (
        select(GridRow.name, DeploymentRow.state, func.count(), func.sum(seconds), *buckets)
        .join(DeploymentRow, DeploymentRow.grid_id == GridRow.id)
        .where(DeploymentRow.finished_at.is_not(None))
        .group_by(GridRow.name, DeploymentRow.state)
    )
    return [
        DurationTally(
            grid=row[0],
            state=row[1],
            count=int(row[2]),
            total_seconds=max(0.0, float(row[3] or 0.0)),
            at_most=tuple(int(n or 0) for n in row[4:]),
        )
        for row in session.execute(query).all()
    ]

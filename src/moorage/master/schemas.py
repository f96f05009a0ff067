"""Wire schemas of the REST API (separate from tables and from the domain model)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from moorage.model.grid import Grid
from moorage.model.node import Node

__all__ = [
    "DriverOut",
    "GridCreate",
    "GridList",
    "GridOut",
    "LabelsIn",
    "NodeList",
    "NodeOut",
    "TokenOut",
    "grid_out",
    "node_out",
]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GridCreate(_In):
    name: str = Field(description="Grid name: lowercase letters, digits and '-'")


class GridOut(BaseModel):
    id: str
    name: str
    node_count: int
    created_at: datetime


class GridList(BaseModel):
    grids: list[GridOut]


class TokenOut(BaseModel):
    token: str


class DriverOut(BaseModel):
    name: str
    version: str | None
    scope: str | None


class NodeOut(BaseModel):
    id: str
    name: str
    grid: str
    status: str
    status_since: datetime
    last_seen_at: datetime
    zone: str | None
    labels: list[str]
    engine_version: str | None
    cpus: int
    memory: int
    drivers: list[DriverOut]
    created_at: datetime | None


class NodeList(BaseModel):
    nodes: list[NodeOut]


class LabelsIn(_In):
    labels: list[str] = Field(description="Labels as key=value")


def grid_out(grid: Grid) -> GridOut:
    return GridOut(id=grid.name, name=grid.name, node_count=grid.node_count, created_at=grid.created_at)


def node_out(node: Node) -> NodeOut:
    return NodeOut(
        id=node.id,
        name=node.name,
        grid=node.grid,
        status=node.status.value,
        status_since=node.status_since,
        last_seen_at=node.last_seen_at,
        zone=node.zone,
        labels=[f"{k}={v}" for k, v in sorted(node.labels.items())],
        engine_version=node.info.engine_version,
        cpus=node.info.cpus,
        memory=node.info.memory,
        drivers=[DriverOut(name=d.name, version=d.version, scope=d.scope) for d in node.info.drivers],
        created_at=node.created_at,
    )

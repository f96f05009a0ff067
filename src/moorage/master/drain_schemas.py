"""Wire schemas of ``POST /v1/nodes/{grid}/{node}/drain``: what leaves the node, to where and
how, and what stays and why."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query
from pydantic import BaseModel, Field

from moorage.master.drain import DrainReport
from moorage.master.schemas import NodeOut, node_out
from moorage.model.stack import instance_label

__all__ = ["DrainMovingOut", "DrainOut", "DrainStayingOut", "DryRunQuery", "drain_out"]

DryRunQuery = Annotated[
    bool, Query(description="Only say what would move where and what would stay; change nothing")
]


class DrainMovingOut(BaseModel):
    instance: str = Field(description="stack/service-n (service-n in the null stack)")
    service: str = Field(description="grid/stack/service")
    number: int
    how: Literal["replan", "reattach", "data", "stop"] = Field(
        description=(
            "replan: planned on another node; reattach: its volume instance re-attaches there "
            "(zone/region/grid topology); data: its volume instance's data is moved by a volume "
            "move job; stop: a daemon's instance (one per node that takes instances)"
        )
    )
    to: str | None = Field(description="The node it goes to (none for stop)")
    volume_instance: str | None = None
    volume: str | None = Field(default=None, description="The volume of volume_instance (how: data)")
    bytes: int | None = Field(
        default=None, description="The bytes its volume move copies, as planned (how: data)"
    )
    job: str | None = Field(
        default=None,
        description="The volume move job (how: data; none in a dry run): GET /v1/volumes/{grid}/{volume}/moves/{job}",
    )


class DrainStayingOut(BaseModel):
    instance: str
    service: str
    number: int
    reason: str


class DrainOut(BaseModel):
    node: NodeOut
    dry_run: bool
    deployment: str | None = Field(description="The deployment moving the instances; none if none moves")
    moving: list[DrainMovingOut]
    staying: list[DrainStayingOut]


def drain_out(report: DrainReport) -> DrainOut:
    return DrainOut(
        node=node_out(report.node),
        dry_run=report.dry_run,
        deployment=report.deployment,
        moving=[
            DrainMovingOut(
                instance=instance_label(m.service_id, m.number),
                service=m.service_id,
                number=m.number,
                how=m.how,
                to=report.names.get(m.node_id) if m.node_id else None,
                volume_instance=m.volume_instance,
                volume=m.volume,
                bytes=m.bytes,
                job=m.job,
            )
            for m in report.leaving
        ],
        staying=[
            DrainStayingOut(
                instance=instance_label(s.service_id, s.number),
                service=s.service_id,
                number=s.number,
                reason=s.reason,
            )
            for s in report.staying
        ],
    )

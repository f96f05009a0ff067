"""Wire schemas of ``POST /v1/nodes/{grid}/{node}/lost`` (``moorage node declare-lost``): what the
declaration did to each volume instance of the node."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import Query
from pydantic import BaseModel, Field

from moorage.master.schemas import NodeOut
from moorage.store.node_loss import Declared

__all__ = ["ForceQuery", "LostOutcomeOut", "NodeLostOut", "node_lost_out"]

ForceQuery = Annotated[
    bool,
    Query(
        description="Declare an online node lost too (its containers are removed first, its data kept stale)"
    ),
]


class LostOutcomeOut(BaseModel):
    volume: str
    docker_volume: str = Field(description="The volume instance (its Docker volume's name)")
    policy: Literal["wait", "restore", "recreate"] = Field(description="The volume's on_node_lost")
    action: Literal["waiting", "restoring", "recreating", "held"] = Field(
        description=(
            "waiting: its instance waits for the node (policy wait, or restore without a backup or a "
            "node to restore onto); restoring: its latest backup is being restored on another node "
            "(job); recreating: its instance starts with an empty volume elsewhere; held: a volume "
            "move or an earlier restore holds it"
        )
    )
    instances: list[str] = Field(description="The instances using it (stack/service-n)")
    message: str
    backup: str | None = Field(default=None, description="restoring: the backup's id")
    backup_time: datetime | None = Field(default=None, description="restoring: when that backup was taken")
    to: str | None = Field(default=None, description="restoring: the node it is restored onto")
    job: str | None = Field(default=None, description="restoring: the restore job (GET /v1/backup-jobs/...)")


class NodeLostOut(BaseModel):
    node: NodeOut
    lost_at: datetime
    last_seen_at: datetime
    was_online: bool = Field(description="It was online: declared lost with force")
    outcomes: list[LostOutcomeOut]


def node_lost_out(node: NodeOut, declared: Declared) -> NodeLostOut:
    return NodeLostOut(
        node=node,
        lost_at=declared.lost_at,
        last_seen_at=declared.last_seen_at,
        was_online=declared.was_online,
        outcomes=[
            LostOutcomeOut(
                volume=o.volume,
                docker_volume=o.volume_instance,
                policy=o.policy,
                action=o.action,
                instances=list(o.instances),
                message=o.message,
                backup=o.backup,
                backup_time=o.backup_time,
                to=o.to,
                job=o.job,
            )
            for o in declared.outcomes
        ],
    )

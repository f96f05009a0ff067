"""A node's desired state: the containers placed on it and the Docker volumes they (or a removal) need."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from moorage.model import docker_labels
from moorage.model.states import VolumeInstanceState
from moorage.protocol import ContainerSpec, Desired, VolumeSpec
from moorage.store.tables import InstanceRow, VolumeInstanceRow, VolumeRow

__all__ = ["desired_for_node", "volume_spec"]


def volume_spec(row: VolumeInstanceRow, grid: str, volume: str | None) -> VolumeSpec:
    return VolumeSpec(
        name=row.name,
        volume_instance_id=row.id,
        driver=row.driver,
        driver_opts={str(k): str(v) for k, v in row.driver_opts.items()},
        labels={
            docker_labels.GRID: grid,
            docker_labels.VOLUME: f"{grid}/{volume}" if volume else "",
            docker_labels.VOLUME_INSTANCE: row.id,
        },
        create=row.state in (VolumeInstanceState.PENDING, VolumeInstanceState.ERROR),
    )


def desired_for_node(session: Session, node_id: str, grid: str) -> Desired:
    containers = [
        ContainerSpec.model_validate(spec)
        for spec in session.scalars(
            select(InstanceRow.container)
            .where(InstanceRow.node_id == node_id, InstanceRow.container.is_not(None))
            .order_by(InstanceRow.service_id, InstanceRow.number)
        )
        if spec is not None
    ]
    rows = session.execute(
        select(VolumeInstanceRow, VolumeRow.name)
        .outerjoin(VolumeRow, VolumeRow.id == VolumeInstanceRow.volume_id)
        .where(VolumeInstanceRow.node_id == node_id)
        .order_by(VolumeInstanceRow.name)
    ).tuples()
    volumes: list[VolumeSpec] = []
    removals: list[VolumeSpec] = []
    for row, volume_name in rows:
        (removals if row.state == VolumeInstanceState.REMOVING else volumes).append(
            volume_spec(row, grid, volume_name)
        )
    return Desired(containers=containers, volumes=volumes, remove_volumes=removals)

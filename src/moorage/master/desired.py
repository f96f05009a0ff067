"""A node's desired state: the containers placed on it and the Docker volumes they (or a removal) need."""

from __future__ import annotations

from sqlalchemy.orm import Session

from moorage.model import docker_labels
from moorage.model.states import VolumeInstanceState
from moorage.protocol import ContainerSpec, Desired, VolumeSpec
from moorage.store.instances import NodeVolumeInstance, node_containers, node_volume_instances
from moorage.store.volume_moves import retired_removals

__all__ = ["desired_for_node", "volume_spec"]


def volume_spec(instance: NodeVolumeInstance, grid: str) -> VolumeSpec:
    """The Docker volume as its agent creates (or removes) it, labelled as this volume instance."""
    volume = instance.volume
    return VolumeSpec(
        name=instance.name,
        volume_instance_id=instance.id,
        driver=instance.driver,
        driver_opts={str(k): str(v) for k, v in instance.driver_opts.items()},
        labels={
            docker_labels.GRID: grid,
            docker_labels.VOLUME: f"{grid}/{volume}" if volume else "",
            docker_labels.VOLUME_INSTANCE: instance.id,
        },
        create=instance.state in (VolumeInstanceState.PENDING, VolumeInstanceState.ERROR),
    )


def desired_for_node(session: Session, node_id: str, grid: str) -> Desired:
    containers = [ContainerSpec.model_validate(spec) for spec in node_containers(session, node_id)]
    volumes: list[VolumeSpec] = []
    removals: list[VolumeSpec] = []
    for instance in node_volume_instances(session, node_id):
        if instance.state == VolumeInstanceState.UNUSED:
            continue  # its Docker volume stays as it is until it is used again or pruned
        (removals if instance.state == VolumeInstanceState.REMOVING else volumes).append(
            volume_spec(instance, grid)
        )
    for retired in retired_removals(session, node_id):  # purged copies a move left (volume purge)
        removals.append(
            VolumeSpec(
                name=retired.name,
                volume_instance_id=retired.volume_instance_id,
                driver=retired.driver,
                create=False,
            )
        )
    return Desired(containers=containers, volumes=volumes, remove_volumes=removals)

"""/v1/volumes/{grid}: volume definitions (Kontena's API shape).

Every route is ``async`` and makes one store call for all its store work: ``Database.read`` for
reads (on the event loop, for a SQLite file), ``Database.run`` for the rest (one hop to a worker
thread). Sync routes took a hop for themselves, one per sync dependency and one more to validate
their response.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from moorage.master.auth import Admin
from moorage.master.schemas import VolumeCreate, VolumeList, VolumeOut, volume_out
from moorage.master.state import MasterState, master_state
from moorage.store.volumes import VolumeView, create_volume, list_volumes, remove_volume, show_volume

__all__ = ["router"]

router = APIRouter(prefix="/v1/volumes", tags=["volumes"], dependencies=[Admin])
State = Annotated[MasterState, Depends(master_state)]


def volume_fields(view: VolumeView) -> dict[str, Any]:
    """``volume_out(view)`` as plain fields: a list validates them all in one call, where building
    a model per volume, instance and service ref was a fifth of the list's cost."""
    return {
        "id": f"{view.grid}/{view.name}",
        "name": view.name,
        "scope": view.scope,
        "driver": view.driver,
        "driver_opts": view.driver_opts,
        "labels": view.labels,
        "created_at": view.created_at,
        "updated_at": view.updated_at,
        "instances": [
            {"name": i.name, "node": i.node, "zone": i.zone, "state": i.state, "error": i.error}
            for i in view.instances
        ],
        "services": [{"id": s} for s in view.services],
    }


@router.get("/{grid}")
async def index(grid: str, state: State) -> VolumeList:
    views = await state.db.read(lambda session: list_volumes(session, grid))
    return VolumeList.model_validate({"volumes": [volume_fields(v) for v in views]})


@router.post("/{grid}", status_code=201)
async def create(grid: str, body: VolumeCreate, state: State) -> VolumeOut:
    """Record a volume definition; nothing is created on any node until a service using it is deployed."""
    return await state.db.run(
        lambda session: volume_out(
            create_volume(
                session,
                grid,
                name=body.name,
                scope=body.scope,
                driver=body.driver,
                driver_opts=body.driver_opts,
                labels=body.labels,
            )
        )
    )


@router.get("/{grid}/{name}")
async def show(grid: str, name: str, state: State) -> VolumeOut:
    return await state.db.read(lambda session: volume_out(show_volume(session, grid, name)))


@router.delete("/{grid}/{name}")
async def remove(grid: str, name: str, state: State) -> dict[str, str]:
    """Refused while any service references the volume; then agents delete its Docker volumes."""
    nodes = await state.db.run(lambda session: remove_volume(session, grid, name))
    await state.hub.push_desired(nodes)
    return {"removed": f"{grid}/{name}"}

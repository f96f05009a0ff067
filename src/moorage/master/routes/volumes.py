"""/v1/volumes/{grid}: volume definitions (Kontena's API shape).

Every route is ``async`` and makes one ``Database.run`` call for all its store work: one hop to a
worker thread per request, where a sync route took one for itself, one per sync dependency and one
more to validate its response.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from moorage.master.auth import Admin
from moorage.master.schemas import VolumeCreate, VolumeList, VolumeOut, volume_out
from moorage.master.state import MasterState, master_state
from moorage.store.volumes import create_volume, list_volumes, remove_volume, show_volume

__all__ = ["router"]

router = APIRouter(prefix="/v1/volumes", tags=["volumes"], dependencies=[Admin])
State = Annotated[MasterState, Depends(master_state)]


@router.get("/{grid}")
async def index(grid: str, state: State) -> VolumeList:
    return await state.db.run(
        lambda session: VolumeList(volumes=[volume_out(v) for v in list_volumes(session, grid)])
    )


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
    return await state.db.run(lambda session: volume_out(show_volume(session, grid, name)))


@router.delete("/{grid}/{name}")
async def remove(grid: str, name: str, state: State) -> dict[str, str]:
    """Refused while any service references the volume; then agents delete its Docker volumes."""
    nodes = await state.db.run(lambda session: remove_volume(session, grid, name))
    await state.hub.push_desired(nodes)
    return {"removed": f"{grid}/{name}"}

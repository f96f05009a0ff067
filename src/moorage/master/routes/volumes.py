"""/v1/volumes/{grid}: volume definitions (Kontena's API shape)."""

from __future__ import annotations

from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Depends

from moorage.master.auth import Admin
from moorage.master.schemas import VolumeCreate, VolumeList, VolumeOut, volume_out
from moorage.master.state import MasterState, master_state
from moorage.store.volumes import create_volume, list_volumes, remove_volume, show_volume

__all__ = ["router"]

router = APIRouter(prefix="/v1/volumes", tags=["volumes"], dependencies=[Admin])
State = Annotated[MasterState, Depends(master_state)]


@router.get("/{grid}")
def index(grid: str, state: State) -> VolumeList:
    with state.db.session() as session:
        return VolumeList(volumes=[volume_out(v) for v in list_volumes(session, grid)])


@router.post("/{grid}", status_code=201)
def create(grid: str, body: VolumeCreate, state: State) -> VolumeOut:
    """Record a volume definition; nothing is created on any node until a service using it is deployed."""
    with state.db.session() as session:
        view = create_volume(
            session,
            grid,
            name=body.name,
            scope=body.scope,
            driver=body.driver,
            driver_opts=body.driver_opts,
            labels=body.labels,
        )
        return volume_out(view)


@router.get("/{grid}/{name}")
def show(grid: str, name: str, state: State) -> VolumeOut:
    with state.db.session() as session:
        return volume_out(show_volume(session, grid, name))


@router.delete("/{grid}/{name}")
async def remove(grid: str, name: str, state: State) -> dict[str, str]:
    """Refused while any service references the volume; then agents delete its Docker volumes."""

    def work() -> set[str]:
        with state.db.session() as session:
            return remove_volume(session, grid, name)

    nodes = await to_thread.run_sync(work)
    await state.hub.push_desired(nodes)
    return {"removed": f"{grid}/{name}"}

"""/v1/services/{grid}: stand-alone services (null stack) and every service's deploy, scale, show."""

from __future__ import annotations

from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Depends

from moorage.master.auth import Admin
from moorage.master.schemas import (
    DeploymentStarted,
    ScaleIn,
    ServiceCreate,
    ServiceList,
    ServiceOut,
    service_out,
)
from moorage.master.state import MasterState, master_state
from moorage.model.stack import full_service_id
from moorage.store.grids import get_grid_row
from moorage.store.services import (
    create_service,
    get_service_row,
    list_services,
    remove_service,
    scale_service,
    service_view,
)

__all__ = ["router"]

router = APIRouter(prefix="/v1/services", tags=["services"], dependencies=[Admin])
State = Annotated[MasterState, Depends(master_state)]


@router.post("/{grid}", status_code=201)
async def create(grid: str, body: ServiceCreate, state: State) -> ServiceOut:
    """Create a service in the null stack (``grid/null/NAME``); ``deploy: true`` deploys it at once."""

    def work() -> tuple[int, ServiceOut]:
        with state.db.session() as session:
            row = create_service(session, grid, body.model_dump())
            return row.id, service_out(service_view(session, get_grid_row(session, grid), row))

    row_id, out = await to_thread.run_sync(work)
    if body.deploy:
        await state.deployer.deploy(grid, [row_id], out.id)
    return out


@router.get("/{grid}")
def index(grid: str, state: State) -> ServiceList:
    with state.db.session() as session:
        return ServiceList(
            services=[service_out(v) for v in list_services(session, get_grid_row(session, grid))]
        )


@router.get("/{grid}/{stack}/{name}")
def show(grid: str, stack: str, name: str, state: State) -> ServiceOut:
    with state.db.session() as session:
        grid_row = get_grid_row(session, grid)
        return service_out(service_view(session, grid_row, get_service_row(session, grid_row, stack, name)))


@router.post("/{grid}/{stack}/{name}/deploy")
async def deploy(grid: str, stack: str, name: str, state: State) -> DeploymentStarted:
    def work() -> int:
        with state.db.session() as session:
            return get_service_row(session, get_grid_row(session, grid), stack, name).id

    row_id = await to_thread.run_sync(work)
    return DeploymentStarted(
        deployment=await state.deployer.deploy(grid, [row_id], full_service_id(grid, stack, name))
    )


@router.post("/{grid}/{stack}/{name}/scale")
async def scale(grid: str, stack: str, name: str, body: ScaleIn, state: State) -> DeploymentStarted:
    def work() -> int:
        with state.db.session() as session:
            row = get_service_row(session, get_grid_row(session, grid), stack, name)
            scale_service(session, row, body.instances)
            return row.id

    row_id = await to_thread.run_sync(work)
    return DeploymentStarted(
        deployment=await state.deployer.deploy(grid, [row_id], full_service_id(grid, stack, name))
    )


@router.delete("/{grid}/{stack}/{name}")
async def remove(grid: str, stack: str, name: str, state: State) -> dict[str, str]:
    """Remove a stand-alone service and its containers; its volumes and their data stay."""

    def work() -> set[str]:
        with state.db.session() as session:
            return remove_service(session, get_service_row(session, get_grid_row(session, grid), stack, name))

    await state.deployer.services_removed(await to_thread.run_sync(work))
    return {"removed": full_service_id(grid, stack, name)}

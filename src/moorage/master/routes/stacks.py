"""/v1/stacks/{grid}: install, upgrade (a new revision each), deploy, list, show, remove."""

from __future__ import annotations

from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from moorage.master.auth import Admin
from moorage.master.schemas import (
    DeploymentStarted,
    StackIn,
    StackList,
    StackOut,
    StackUpgradeIn,
    service_out,
)
from moorage.master.state import MasterState, master_state
from moorage.stackfile import stack_from_dict
from moorage.store.grids import get_grid_row
from moorage.store.services import list_services
from moorage.store.stacks import (
    StackChange,
    get_stack_row,
    install_stack,
    list_stacks,
    remove_stack,
    stack_service_ids,
    upgrade_stack,
)
from moorage.store.tables import GridRow, StackRow

__all__ = ["router"]

router = APIRouter(prefix="/v1/stacks", tags=["stacks"], dependencies=[Admin])
State = Annotated[MasterState, Depends(master_state)]


def _stack_out(session: Session, row: StackRow, grid_row: GridRow) -> StackOut:
    spec = stack_from_dict(row.spec)
    return StackOut(
        id=f"{grid_row.name}/{row.name}",
        name=row.name,
        revision=row.revision,
        version=spec.version,
        description=spec.description,
        stack=row.spec,
        created_at=row.created_at,
        updated_at=row.updated_at,
        services=[service_out(v) for v in list_services(session, grid_row, row.name)],
    )


async def _deploy(state: MasterState, grid: str, change: StackChange, deploy: bool) -> DeploymentStarted:
    await state.hub.push_desired(change.touched_nodes)
    if not deploy:
        return DeploymentStarted(deployment=None)
    return DeploymentStarted(
        deployment=await state.deployer.deploy(grid, change.service_ids, f"{grid}/{change.stack}")
    )


@router.post("/{grid}", status_code=201)
async def install(grid: str, body: StackIn, state: State) -> DeploymentStarted:
    def work() -> StackChange:
        with state.db.session() as session:
            return install_stack(session, grid, body.stack, body.source, body.name)

    return await _deploy(state, grid, await to_thread.run_sync(work), body.deploy)


@router.put("/{grid}/{name}")
async def upgrade(grid: str, name: str, body: StackUpgradeIn, state: State) -> DeploymentStarted:
    def work() -> StackChange:
        with state.db.session() as session:
            return upgrade_stack(session, grid, name, body.stack, body.source)

    return await _deploy(state, grid, await to_thread.run_sync(work), body.deploy)


@router.post("/{grid}/{name}/deploy")
async def deploy(grid: str, name: str, state: State) -> DeploymentStarted:
    def work() -> list[int]:
        with state.db.session() as session:
            return stack_service_ids(session, grid, name)

    ids = await to_thread.run_sync(work)
    return DeploymentStarted(deployment=await state.deployer.deploy(grid, ids, f"{grid}/{name}"))


@router.get("/{grid}")
def index(grid: str, state: State) -> StackList:
    with state.db.session() as session:
        return StackList(stacks=[_stack_out(session, row, g) for row, g in list_stacks(session, grid)])


@router.get("/{grid}/{name}")
def show(grid: str, name: str, state: State) -> StackOut:
    with state.db.session() as session:
        grid_row = get_grid_row(session, grid)
        return _stack_out(session, get_stack_row(session, grid_row, name), grid_row)


@router.delete("/{grid}/{name}")
async def remove(grid: str, name: str, state: State) -> dict[str, str]:
    """Remove the stack and its containers; its volumes and their data stay."""

    def work() -> set[str]:
        with state.db.session() as session:
            return remove_stack(session, grid, name)

    await state.deployer.services_removed(await to_thread.run_sync(work))
    return {"removed": f"{grid}/{name}"}

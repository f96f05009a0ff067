"""/v1/services/{grid}: stand-alone services (null stack) and every service's deploy, scale, show.

``async`` routes, each with one store call, ``Database.read`` or ``Database.run`` (see routes/volumes.py).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from moorage.master.auth import Actor
from moorage.master.routing import api_router
from moorage.master.schemas import (
    DeploymentStarted,
    GridPath,
    ScaleIn,
    ServiceCreate,
    ServiceList,
    ServiceOut,
    ServicePath,
    StackPath,
    service_out,
)
from moorage.master.service_fields import create_service
from moorage.master.state import State
from moorage.master.user_actions import record_action
from moorage.model.events import EventKind
from moorage.model.stack import NULL_STACK, full_service_id
from moorage.store.grids import get_grid_row
from moorage.store.services import (
    get_service_row,
    list_services,
    remove_service,
    scale_service,
    service_view,
    stored_service,
)
from moorage.store.volume_use import refresh_use

__all__ = ["router"]

router = api_router("/v1/services", "services")


def _shown(stack: str, name: str) -> str:
    """As the CLI names a service: ``stack/name``, or ``name`` in the null stack."""
    return name if stack == NULL_STACK else f"{stack}/{name}"


@router.post("/{grid}", status_code=201)
async def create(grid: GridPath, body: ServiceCreate, state: State, actor: Actor) -> ServiceOut:
    """Create a service in the null stack (``grid/null/NAME``); ``deploy: true`` deploys it at once."""

    def work(session: Session) -> tuple[int, ServiceOut]:
        row_id, view = create_service(session, grid, body.model_dump())
        record_action(
            session,
            grid,
            EventKind.SERVICE_CREATED,
            f"service {body.name} created",
            actor,
            stack=NULL_STACK,
            service=body.name,
        )
        return row_id, service_out(view)

    row_id, out = await state.db.run(work)
    if body.deploy:
        await state.deployer.deploy(grid, [row_id], out.id)
    return out


@router.get("/{grid}")
async def index(grid: GridPath, state: State) -> ServiceList:
    return await state.db.read(
        lambda session: ServiceList(
            services=[service_out(v) for v in list_services(session, get_grid_row(session, grid))]
        )
    )


@router.get("/{grid}/{stack}/{name}")
async def show(grid: GridPath, stack: StackPath, name: ServicePath, state: State) -> ServiceOut:
    def work(session: Session) -> ServiceOut:
        grid_row = get_grid_row(session, grid)
        return service_out(service_view(session, grid_row, get_service_row(session, grid_row, stack, name)))

    return await state.db.read(work)


@router.post("/{grid}/{stack}/{name}/deploy")
async def deploy(grid: GridPath, stack: StackPath, name: ServicePath, state: State) -> DeploymentStarted:
    row_id = await state.db.read(
        lambda session: get_service_row(session, get_grid_row(session, grid), stack, name).id
    )
    return DeploymentStarted(
        deployment=await state.deployer.deploy(grid, [row_id], full_service_id(grid, stack, name))
    )


@router.post("/{grid}/{stack}/{name}/scale")
async def scale(
    grid: GridPath, stack: StackPath, name: ServicePath, body: ScaleIn, state: State, actor: Actor
) -> DeploymentStarted:
    def work(session: Session) -> int:
        row = get_service_row(session, get_grid_row(session, grid), stack, name)
        scale_service(session, row, body.instances)
        record_action(
            session,
            grid,
            EventKind.SERVICE_SCALED,
            f"service {_shown(stack, name)} scaled to {body.instances} instance(s)",
            actor,
            stack=stack,
            service=name,
        )
        return row.id

    row_id = await state.db.run(work)
    return DeploymentStarted(
        deployment=await state.deployer.deploy(grid, [row_id], full_service_id(grid, stack, name))
    )


@router.delete("/{grid}/{stack}/{name}")
async def remove(
    grid: GridPath, stack: StackPath, name: ServicePath, state: State, actor: Actor
) -> dict[str, str]:
    """Remove a stand-alone service and its containers; its volumes and their data stay (their
    volume instances ``unused``)."""

    def work(session: Session) -> set[str]:
        row = get_service_row(session, get_grid_row(session, grid), stack, name)
        volumes = stored_service(row).grid_volumes
        nodes = remove_service(session, row)
        refresh_use(session, row.grid_id, volumes)
        record_action(
            session,
            grid,
            EventKind.SERVICE_REMOVED,
            f"service {_shown(stack, name)} removed (its volumes stay)",
            actor,
            stack=stack,
            service=name,
        )
        return nodes

    nodes = await state.db.run(work)
    await state.deployer.services_removed(nodes)
    return {"removed": full_service_id(grid, stack, name)}

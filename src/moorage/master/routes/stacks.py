"""/v1/stacks/{grid}: install, upgrade (a new revision each), deploy, list, show, remove.

``async`` routes, each with one store call, ``Database.read`` or ``Database.run`` (see routes/volumes.py).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from sqlalchemy.orm import Session

from moorage.master.auth import Actor
from moorage.master.routing import api_router
from moorage.master.schemas import (
    DeploymentStarted,
    GridPath,
    StackIn,
    StackList,
    StackOut,
    StackPath,
    StackUpgradeIn,
    service_out,
)
from moorage.master.state import MasterState, State
from moorage.master.user_actions import record_action
from moorage.model.events import EventKind
from moorage.store.stacks import (
    StackChange,
    StackView,
    install_stack,
    list_stacks,
    remove_stack,
    show_stack,
    stack_service_ids,
    upgrade_stack,
)

__all__ = ["router"]

router = api_router("/v1/stacks", "stacks")


def _stack_out(view: StackView) -> StackOut:
    return StackOut(
        id=view.id,
        name=view.name,
        revision=view.revision,
        version=view.spec.version,
        description=view.spec.description,
        stack=view.document,
        created_at=view.created_at,
        updated_at=view.updated_at,
        services=[service_out(v) for v in view.services],
    )


async def _deploy(state: MasterState, grid: str, change: StackChange, deploy: bool) -> DeploymentStarted:
    await state.hub.push_desired(change.touched_nodes)
    if not deploy:
        return DeploymentStarted(deployment=None)
    return DeploymentStarted(
        deployment=await state.deployer.deploy(grid, change.service_ids, f"{grid}/{change.stack}")
    )


@router.post("/{grid}", status_code=201)
async def install(grid: GridPath, body: StackIn, state: State, actor: Actor) -> DeploymentStarted:
    def work(session: Session) -> StackChange:
        change = install_stack(session, grid, body.stack, body.source, body.name)
        record_action(
            session,
            grid,
            EventKind.STACK_INSTALLED,
            f"stack {change.stack} installed (revision {change.revision}, {len(change.service_ids)} service(s))",
            actor,
            stack=change.stack,
        )
        return change

    change = await state.db.run(work)
    return await _deploy(state, grid, change, body.deploy)


@router.put("/{grid}/{name}")
async def upgrade(
    grid: GridPath, name: StackPath, body: StackUpgradeIn, state: State, actor: Actor
) -> DeploymentStarted:
    def work(session: Session) -> StackChange:
        change = upgrade_stack(session, grid, name, body.stack, body.source)
        record_action(
            session,
            grid,
            EventKind.STACK_UPGRADED,
            f"stack {change.stack} upgraded to revision {change.revision}",
            actor,
            stack=change.stack,
        )
        return change

    change = await state.db.run(work)
    return await _deploy(state, grid, change, body.deploy)


@router.post("/{grid}/{name}/deploy")
async def deploy(grid: GridPath, name: StackPath, state: State) -> DeploymentStarted:
    ids = await state.db.read(lambda session: stack_service_ids(session, grid, name))
    return DeploymentStarted(deployment=await state.deployer.deploy(grid, ids, f"{grid}/{name}"))


@router.get("/{grid}")
async def index(grid: GridPath, state: State) -> StackList:
    return await state.db.read(
        lambda session: StackList(stacks=[_stack_out(v) for v in list_stacks(session, grid)])
    )


@router.get("/{grid}/{name}")
async def show(grid: GridPath, name: StackPath, state: State) -> StackOut:
    return await state.db.read(lambda session: _stack_out(show_stack(session, grid, name)))


@router.delete("/{grid}/{name}")
async def remove(
    grid: GridPath,
    name: StackPath,
    state: State,
    actor: Actor,
    volumes: Annotated[
        bool,
        Query(description="Also remove the volumes the stack owns, and their data (never external ones)"),
    ] = False,
) -> dict[str, str]:
    """Remove the stack and its containers; its volumes and their data stay, unless ``volumes``."""

    def work(session: Session) -> set[str]:
        nodes = remove_stack(session, grid, name, volumes=volumes)
        record_action(
            session,
            grid,
            EventKind.STACK_REMOVED,
            f"stack {name} removed" + (" with its own volumes" if volumes else " (its volumes stay)"),
            actor,
            stack=name,
        )
        return nodes

    await state.deployer.services_removed(await state.db.run(work))
    return {"removed": f"{grid}/{name}"}

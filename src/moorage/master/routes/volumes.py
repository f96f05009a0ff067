"""/v1/volumes/{grid}: volume definitions (Kontena's API shape).

Every route is ``async`` and makes one store call for all its store work: ``Database.read`` for
reads (on the event loop, for a SQLite file), ``Database.run`` for the rest (one hop to a worker
thread). Sync routes took a hop for themselves, one per sync dependency and one more to validate
their response.

Responses are rendered bytes (``moorage.master.volume_lists``), the same JSON FastAPI made from
the response models, which stay in the decorators for the OpenAPI document; a list is served from
the grid's kept body while the store has not changed since it was built.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import Request, Response
from pydantic_core import to_json
from sqlalchemy.orm import Session

from moorage.master.auth import Actor
from moorage.master.routing import api_router
from moorage.master.schemas import (
    GridPath,
    PrunedOut,
    VolumeCreate,
    VolumeList,
    VolumeOut,
    VolumePath,
    VolumePruneIn,
    VolumePruneOut,
)
from moorage.master.state import State
from moorage.master.user_actions import record_action
from moorage.master.volume_lists import VolumeLists, volume_json
from moorage.model.events import EventKind
from moorage.store.volume_use import prune_unused
from moorage.store.volumes import VolumeView, create_volume, remove_volume, show_volume

__all__ = ["router"]

router = api_router("/v1/volumes", "volumes")
JSON = "application/json"


@router.get("/{grid}", response_model=VolumeList)
async def index(grid: GridPath, state: State, request: Request) -> Response:
    lists: VolumeLists = request.app.state.volume_lists
    return Response(await lists.body(state.db, grid), media_type=JSON)


@router.post("/{grid}", status_code=201, response_model=VolumeOut)
async def create(grid: GridPath, body: VolumeCreate, state: State, actor: Actor) -> Response:
    """Record a volume definition; nothing is created on any node until a service using it is deployed."""

    def work(session: Session) -> VolumeView:
        view = create_volume(
            session,
            grid,
            name=body.name,
            scope=body.scope,
            driver=body.driver,
            driver_opts=body.driver_opts,
            labels=body.labels,
            topology=body.topology,
        )
        record_action(
            session,
            grid,
            EventKind.VOLUME_CREATED,
            f"volume {view.name} created ({view.scope} scope, driver {view.driver}, topology {view.topology})",
            actor,
            volume=view.name,
        )
        return view

    view = await state.db.run(work)
    return Response(volume_json(view), status_code=201, media_type=JSON)


@router.post("/{grid}/unused/prune", response_model=VolumePruneOut)
async def prune(grid: GridPath, body: VolumePruneIn, state: State) -> VolumePruneOut:
    """Remove the volume instances no instance would use (state ``unused``), or with ``dry_run``
    say which; their agents delete the Docker volumes (only those labelled as them)."""
    older = timedelta(seconds=body.older_than) if body.older_than is not None else None
    pruned, nodes = await state.db.run(
        lambda session: prune_unused(
            session, grid, volume=body.volume, older_than=older, dry_run=body.dry_run
        )
    )
    await state.hub.push_desired(nodes)
    return VolumePruneOut(
        dry_run=body.dry_run,
        pruned=[
            PrunedOut(volume=p.volume, name=p.name, node=p.node, unused_since=p.unused_since) for p in pruned
        ],
    )


@router.get("/{grid}/{name}", response_model=VolumeOut)
async def show(grid: GridPath, name: VolumePath, state: State) -> Response:
    return Response(
        volume_json(await state.db.read(lambda session: show_volume(session, grid, name))), media_type=JSON
    )


@router.delete("/{grid}/{name}", response_model=dict[str, str])
async def remove(grid: GridPath, name: VolumePath, state: State, actor: Actor) -> Response:
    """Refused while any service references the volume; then agents delete its Docker volumes."""

    def work(session: Session) -> set[str]:
        nodes = remove_volume(session, grid, name)
        record_action(
            session,
            grid,
            EventKind.VOLUME_REMOVED,
            f"volume {name} removed; its Docker volumes are deleted on {len(nodes)} node(s)",
            actor,
            volume=name,
        )
        return nodes

    nodes = await state.db.run(work)
    await state.hub.push_desired(nodes)
    return Response(to_json({"removed": f"{grid}/{name}"}), media_type=JSON)

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
from typing import Annotated, Any

from fastapi import Path, Request, Response
from pydantic_core import to_json
from sqlalchemy.orm import Session

from moorage.master.auth import Actor
from moorage.master.routing import api_router
from moorage.master.schemas import (
    GridPath,
    MoveCreate,
    MoveList,
    MoveOut,
    MoveStarted,
    PrunedOut,
    PurgeOut,
    PurgeRequest,
    VolumeCreate,
    VolumeList,
    VolumeOut,
    VolumePath,
    VolumePruneIn,
    VolumePruneOut,
    VolumeShown,
    VolumeUpdate,
)
from moorage.master.state import State
from moorage.master.user_actions import record_action
from moorage.master.volume_lists import VolumeLists, volume_fields, volume_json
from moorage.master.volume_moves import MovePlan
from moorage.model.events import EventKind
from moorage.store.node_loss import restored_of
from moorage.store.volume_moves import (
    MOVED,
    STALE,
    MoveView,
    move_view,
    moves_of,
    purge_retired,
    retired_of,
)
from moorage.store.volume_use import prune_unused
from moorage.store.volumes import VolumeView, create_volume, remove_volume, set_on_node_lost, show_volume

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
            on_node_lost=body.on_node_lost,
        )
        record_action(
            session,
            grid,
            EventKind.VOLUME_CREATED,
            f"volume {view.name} created ({view.scope} scope, driver {view.driver}, topology {view.topology}, "
            f"on_node_lost {view.on_node_lost})",
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
@router.get("/{grid}/{name}", response_model=VolumeShown)
async def show(grid: GridPath, name: VolumePath, state: State) -> Response:
    """A volume, with the source copies moves retired (``retired``) and the copies superseded on
    nodes declared lost (``stale``)."""
    view, kept, restores = await state.db.read(
        lambda session: (
            show_volume(session, grid, name),
            retired_of(session, grid, name),
            restored_of(session, grid, name),
        )
    )
    fields = volume_fields(view)
    for why, key in ((MOVED, "retired"), (STALE, "stale")):
        fields[key] = [
            {"name": r.name, "node": r.node, "since": r.since, "state": r.state} for r in kept if r.why == why
        ]
    fields["restored"] = [
        {
            "name": r.docker_volume,
            "node": r.node,
            "backup": r.backup,
            "backup_time": r.backup_time,
            "restored_at": r.restored_at,
            "lost_node": r.lost_node,
        }
        for r in restores
    ]
    return Response(to_json(fields), media_type=JSON)


@router.patch("/{grid}/{name}", response_model=VolumeOut)
async def update(
    grid: GridPath, name: VolumePath, body: VolumeUpdate, state: State, actor: Actor
) -> Response:
    """Change what the volume's data does once its node is declared lost (``on_node_lost``). On a
    node already declared lost it acts when the node is declared lost again."""

    def work(session: Session) -> VolumeView:
        view, before = set_on_node_lost(session, grid, name, body.on_node_lost)
        if before is not None:
            record_action(
                session,
                grid,
                EventKind.VOLUME_UPDATED,
                f"volume {name}: on_node_lost {before} -> {view.on_node_lost}",
                actor,
                volume=name,
            )
        return view

    view = await state.db.run(work)
    return Response(volume_json(view), media_type=JSON)


MovePath = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="Move id")]


def _move_fields(view: MoveView) -> dict[str, Any]:
    return {
        "id": view.id,
        "volume": view.volume,
        "docker_volume": view.docker_name,
        "source": view.source_node,
        "target": view.target_node,
        "method": view.method,
        "state": view.state,
        "phase": view.phase,
        "bytes_total": view.bytes_total,
        "bytes_done": view.bytes_done,
        "files": view.files,
        "instances": list(view.instances),
        "message": view.message,
        "cleanup": view.cleanup,
        "created_at": view.created_at,
        "updated_at": view.updated_at,
        "stopped_at": view.stopped_at,
        "switched_at": view.switched_at,
        "finished_at": view.finished_at,
    }


def _plan_fields(plan: MovePlan) -> dict[str, Any]:
    return {
        "volume": plan.volume,
        "docker_volume": plan.docker_name,
        "source": plan.source,
        "source_zone": plan.source_zone,
        "target": plan.target,
        "target_zone": plan.target_zone,
        "method": plan.method,
        "bytes": plan.bytes,
        "files": plan.files,
        "instances": list(plan.instances),
    }


@router.post("/{grid}/{name}/moves", status_code=201, response_model=MoveStarted)
async def start_move(grid: GridPath, name: VolumePath, body: MoveCreate, state: State) -> Response:
    """Move one volume instance's data (and its instance) to another node: plan, copy while it
    runs, stop, copy the difference, verify, switch; the source is kept (retired). A refusal (409)
    names both nodes, their zones and the nodes it may move to. ``dry_run``: the plan only (200)."""
    plan, move = await state.moves.start_move(grid, name, body.docker_volume, body.to, dry_run=body.dry_run)
    out = {"plan": _plan_fields(plan), "move": _move_fields(move) if move is not None else None}
    return Response(to_json(out), status_code=200 if move is None else 201, media_type=JSON)


@router.get("/{grid}/{name}/moves", response_model=MoveList)
async def list_moves(grid: GridPath, name: VolumePath, state: State) -> Response:
    views = await state.db.read(lambda session: moves_of(session, grid, name))
    return Response(to_json({"moves": [_move_fields(v) for v in views]}), media_type=JSON)


@router.get("/{grid}/{name}/moves/{move_id}", response_model=MoveOut)
async def show_move(grid: GridPath, name: VolumePath, move_id: MovePath, state: State) -> Response:
    view = await state.db.read(lambda session: move_view(session, grid, name, move_id))
    return Response(to_json(_move_fields(view)), media_type=JSON)


@router.post("/{grid}/{name}/purge", response_model=PurgeOut)
async def purge(grid: GridPath, name: VolumePath, body: PurgeRequest, state: State) -> Response:
    """Remove retired and stale copies (all of the volume's, or those named): their nodes delete them."""
    names, nodes = await state.db.run(lambda session: purge_retired(session, grid, name, body.docker_volumes))
    await state.hub.push_desired(nodes)
    return Response(to_json({"purging": names}), media_type=JSON)


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

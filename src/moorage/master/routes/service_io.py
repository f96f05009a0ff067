"""/v1/services/{grid}/{stack}/{name}/logs and .../exec: a service's output and commands in its
containers, through the agents of their nodes (``moorage.master.service_io`` says what goes on
the wire). Both read the store once, then talk to the hub's relay.

``GET .../logs?instance=&follow=&tail=&since=&timestamps=`` streams NDJSON (``application/x-ndjson``).
``WebSocket .../exec?instance=N&cmd=A&cmd=B&tty=&stdin=&width=&height=`` runs a command; it
answers like an HTTP route (401/403, 404, 409, 422 with ``{"error": ...}``) before it accepts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, WebSocket
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, GetJsonSchemaHandler, ValidationError
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from moorage.errors import InvalidInput, MoorageError
from moorage.master.auth import check_admin
from moorage.master.errors import validation_errors
from moorage.master.forwarding import (
    FORWARDED,
    ForwardedLog,
    PeerMaster,
    forwarded_logs,
    open_peer_exec,
    pipe_to_peer,
)
from moorage.master.routing import api_router
from moorage.master.schemas import GridPath, ServicePath, StackPath
from moorage.master.service_io import (
    Forward,
    LogRequest,
    Picked,
    open_logs,
    pick,
    pipe_exec,
    record,
    start_exec,
)
from moorage.master.state import MasterState, State
from moorage.model.log_time import SINCE_HELP, SINCE_PATTERN, parse_since
from moorage.protocol import ExecOpen
from moorage.store.instance_places import instance_places

__all__ = ["router", "socket_router"]

router = api_router("/v1/services", "services")
socket_router = APIRouter(tags=["services"])

_NDJSON = "application/x-ndjson"


class _SinceSchema:
    """Schema only (``parse_since`` checks): a duration or unix seconds, or an RFC 3339 date-time."""

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema["anyOf"] = [{"pattern": SINCE_PATTERN}, {"format": "date-time"}]
        return schema


SinceText = Annotated[str, _SinceSchema()]


def _holder_of(state: MasterState, forwarded: str | None) -> Callable[[str], PeerMaster | None]:
    """Which other master holds a node's agent; none for a request another master passed on
    (one hop at most: ``master/forwarding.py``)."""
    if forwarded is not None:
        return lambda node_id: None
    return state.peers.holder


async def _picked(
    state: MasterState, grid: str, stack: str, name: str, instance: int | None, forwarded: str | None
) -> Picked:
    places = await state.db.read(lambda session: instance_places(session, grid, stack, name))
    return pick(places, instance, stack, name, state.hub.connections.get, _holder_of(state, forwarded))


@router.get(
    "/{grid}/{stack}/{name}/logs",
    response_class=StreamingResponse,
    responses={
        200: {"content": {_NDJSON: {}}, "description": "One JSON object per line of output (see the module)"},
        409: {"description": "No instance can be reached: on no node, or its node is offline"},
    },
)
async def logs(
    grid: GridPath,
    stack: StackPath,
    name: ServicePath,
    state: State,
    http: Request,
    instance: Annotated[int | None, Query(ge=1, description="One instance's number; all if absent")] = None,
    follow: Annotated[bool, Query(description="Keep streaming new output")] = False,
    tail: Annotated[int | None, Query(ge=0, description="The last N lines of each instance")] = None,
    since: Annotated[
        SinceText | None,
        Query(max_length=64, description=f"Output since: {SINCE_HELP}"),
    ] = None,
    timestamps: Annotated[bool, Query(description="Each line's time, in 'time'")] = False,
) -> StreamingResponse:
    """A service's output, instance-prefixed, like ``docker service logs``."""
    request = LogRequest(follow=follow, tail=tail, since=_since(since), timestamps=timestamps)
    picked = await _picked(state, grid, stack, name, instance, http.headers.get(FORWARDED))
    params: dict[str, Any] = {"follow": follow, "timestamps": timestamps}
    if tail is not None:
        params["tail"] = tail
    if since is not None:
        params["since"] = since

    async def start_forward(forward: Forward) -> ForwardedLog:
        return await forwarded_logs(
            forward.master,
            http.url.path,
            {**params, "instance": forward.place.number},
            http.headers.get("authorization"),
            state.leadership.me.id,
            state.peer_ssl,
        )

    feed = await open_logs(state.hub.relay, picked.targets, request, picked.forwards, start_forward)
    notes = [record(place, place.node, error=problem) for place, problem in picked.problems]
    return StreamingResponse(feed.lines(notes), media_type=_NDJSON)


def _since(since: str | None) -> float | None:
    if since is None:
        return None
    try:
        return parse_since(since, time.time())
    except ValueError as err:
        raise InvalidInput.one("since", str(err)) from err


class ExecQuery(BaseModel):
    """The exec socket's query: which instance, the command, and how to run it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    instance: int = Field(ge=1)
    cmd: list[Annotated[str, Field(max_length=65536)]] = Field(min_length=1, max_length=4096)
    tty: bool = False
    stdin: bool = False
    width: int | None = Field(default=None, ge=1, le=65535)
    height: int | None = Field(default=None, ge=1, le=65535)


def _exec_query(websocket: WebSocket) -> ExecQuery:
    raw: dict[str, Any] = {}
    for key, value in websocket.query_params.multi_items():
        if key == "cmd":
            raw.setdefault("cmd", []).append(value)
        else:
            raw[key] = value
    try:
        return ExecQuery.model_validate(raw)
    except ValidationError as err:
        raise InvalidInput(validation_errors(list(err.errors()))) from err  # type: ignore[arg-type]


@socket_router.websocket("/v1/services/{grid}/{stack}/{name}/exec")
async def exec_socket(websocket: WebSocket, grid: str, stack: str, name: str) -> None:
    """Run a command in one instance's container (see ``moorage.master.service_io``), or pass the
    socket on to the master holding its node's agent (``master/forwarding.py``)."""
    state: MasterState = websocket.app.state.moorage
    try:
        await check_admin(websocket, state)
        query = _exec_query(websocket)
        picked = await _picked(state, grid, stack, name, query.instance, websocket.headers.get(FORWARDED))
        if not picked.targets:
            (forward,) = picked.forwards
            peer = await open_peer_exec(
                forward.master,
                websocket.url.path,
                list(websocket.query_params.multi_items()),
                websocket.headers.get("authorization"),
                state.leadership.me.id,
                state.peer_ssl,
            )
            stream = None
        else:
            (target,) = picked.targets
            peer = None
            stream = await start_exec(
                state.hub.relay,
                target,
                ExecOpen(
                    stream="0",
                    container=target.container,
                    cmd=query.cmd,
                    tty=query.tty,
                    stdin=query.stdin,
                    width=query.width,
                    height=query.height,
                ),
            )
    except MoorageError as err:
        await websocket.send_denial_response(JSONResponse({"error": err.payload()}, status_code=err.status))
        return
    try:
        await websocket.accept()
    except BaseException:
        if stream is not None:
            stream.close()
        if peer is not None:
            await peer.close()
        raise
    if peer is not None:
        await pipe_to_peer(websocket, peer)
    else:
        assert stream is not None
        await pipe_exec(websocket, stream, stdin=query.stdin)

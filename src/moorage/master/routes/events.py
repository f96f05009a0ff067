"""/v1/grids/{grid}/events: what happened in a grid, paged by cursor, or followed as a stream.

``GET /v1/grids/{grid}/events?limit=&before=&after=&stack=&service=&volume=&node=&kind=``
answers a page (``EventList``), oldest first: without a cursor the newest ``limit`` events;
``before=C`` the ones before (``older`` of a page is the next one back); ``after=C`` the ones
after (``newer`` of any page reads on from it); both: the ones between, oldest first. ``follow=true`` streams NDJSON instead
(``application/x-ndjson``, as service logs do): the page it would answer, then each new event
as it is recorded, one JSON object a line (an empty line now and then while nothing happens).
A cursor is an event's ``cursor``, or an ``older``/``newer`` of a page.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from moorage.errors import InvalidInput
from moorage.master.event_feed import Followers
from moorage.master.event_schemas import (
    CURSOR_PATTERN,
    CursorQuery,
    EventList,
    KindQuery,
    NodeQuery,
    ServiceQuery,
    StackQuery,
    VolumeQuery,
    event_list,
)
from moorage.master.routing import api_router
from moorage.master.schemas import GridPath
from moorage.master.state import State
from moorage.model.events import EventKind
from moorage.store.events import EventFilter, EventPage, event_page, events_after, newest_event_id
from moorage.store.grids import get_grid_row

__all__ = ["router"]

router = api_router("/v1/grids", "events")

_NDJSON = "application/x-ndjson"
_KINDS = {str(kind) for kind in EventKind}
_SUBJECTS = {kind.partition(".")[0] for kind in _KINDS}
MAX_LIMIT = 1000


def _cursor(name: str, value: str | None) -> int | None:
    if value is None:
        return None
    if not re.fullmatch(CURSOR_PATTERN, value):
        raise InvalidInput.one(
            name,
            f"'{value[:40]}' is not a cursor: pass the 'cursor' of an event, or the 'older' or 'newer' "
            "of a page this API answered (digits)",
        )
    return int(value)


def _kind(kind: str | None) -> str | None:
    if kind is None or kind in _KINDS or kind in _SUBJECTS:
        return kind
    raise InvalidInput.one(
        "kind",
        f"'{kind[:40]}' is no kind of event; use one of {', '.join(sorted(_KINDS))}, or the part before "
        f"the dot ({', '.join(sorted(_SUBJECTS))})",
    )


@router.get(
    "/{grid}/events",
    response_model=EventList,
    responses={
        200: {
            "content": {
                "application/json": {},
                _NDJSON: {"description": "With follow=true: one event (EventOut) per line"},
            }
        }
    },
)
async def events(
    grid: GridPath,
    state: State,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Events per page")] = 100,
    before: Annotated[CursorQuery | None, Query(description="Events before this cursor")] = None,
    after: Annotated[CursorQuery | None, Query(description="Events after this cursor")] = None,
    stack: Annotated[StackQuery | None, Query(description="Only this stack's")] = None,
    service: Annotated[ServiceQuery | None, Query(description="Only services of this name")] = None,
    volume: Annotated[VolumeQuery | None, Query(description="Only this volume's and its instances'")] = None,
    node: Annotated[NodeQuery | None, Query(description="Only this node's (name or id)")] = None,
    kind: Annotated[KindQuery | None, Query(description="A kind, or its subject (e.g. deployment)")] = None,
    follow: Annotated[bool, Query(description="Stream NDJSON: this page, then each new event")] = False,
) -> EventList | StreamingResponse:
    """The grid's events (see the module)."""
    older, newer = _cursor("before", before), _cursor("after", after)
    if follow and older is not None:
        raise InvalidInput.one("before", "a followed stream reads on from 'after' (or now), not back in time")
    where = EventFilter(stack=stack, service=service, volume=volume, node=node, kind=_kind(kind))

    def read(session: Session) -> tuple[int, EventPage]:
        grid_row = get_grid_row(session, grid)
        if newer is not None and newer > (newest := newest_event_id(session)):
            raise InvalidInput.one(
                "after",
                f"cursor {newer} is ahead of this master's newest event ({newest}); pass one this master "
                "answered",
            )
        if newer is not None:
            return grid_row.id, events_after(
                session, grid_row.id, grid, where, after=newer, limit=limit, before=older
            )
        return grid_row.id, event_page(session, grid_row.id, grid, where, limit=limit, before=older)

    grid_id, page = await state.db.read(read)
    body = event_list(page)
    if not follow:
        return body
    followers: Followers = request.app.state.event_followers

    async def lines() -> object:
        for event in body.events:
            yield event.model_dump_json().encode() + b"\n"
        async for line in followers.lines(grid_id, grid, where, page.newer):
            yield line

    return StreamingResponse(lines(), media_type=_NDJSON)  # type: ignore[arg-type]

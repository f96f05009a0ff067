"""Wire schemas of ``GET /v1/grids/{grid}/events``: one event, a page, the query's filters."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from moorage.master.schemas import Documented, _rule
from moorage.model import names
from moorage.store.events import EventPage, EventView

__all__ = [
    "CURSOR_PATTERN",
    "CursorQuery",
    "EventList",
    "EventOut",
    "KindQuery",
    "NodeQuery",
    "ServiceQuery",
    "StackQuery",
    "VolumeQuery",
    "event_list",
    "event_out",
]

CURSOR_PATTERN = r"^[0-9]{1,18}$"
KIND_PATTERN = r"^[a-z_]{1,40}(\.[a-z_]{1,40})?$"


class EventOut(BaseModel):
    """One event: when, what (``kind``, and a sentence), who (the admin token's name, for what a
    user did), and the ids of its subject (null where they do not apply)."""

    cursor: str = Field(description="This event's place: pass it as 'after' to read on from it")
    time: datetime
    kind: str = Field(description="What happened, e.g. deployment.succeeded, volume_instance.created")
    message: str
    actor: str | None = Field(description="The admin token's name, for what a user did")
    grid: str | None = Field(description="Null for the master's own events (tokens)")
    stack: str | None
    service: str | None
    instance: int | None
    volume: str | None
    volume_instance: str | None
    node_id: str | None
    node: str | None
    deployment: str | None


class EventList(BaseModel):
    events: list[EventOut] = Field(description="Oldest first")
    older: str | None = Field(
        description="Pass as 'before' for the page before; null: no older event matches"
    )
    newer: str = Field(description="Pass as 'after' to read what comes after this page")


def event_out(view: EventView) -> EventOut:
    return EventOut(
        cursor=str(view.id),
        time=view.time,
        kind=view.kind,
        message=view.message,
        actor=view.actor,
        grid=view.grid,
        stack=view.stack,
        service=view.service,
        instance=view.instance,
        volume=view.volume,
        volume_instance=view.volume_instance,
        node_id=view.node_id,
        node=view.node,
        deployment=view.deployment,
    )


def event_list(page: EventPage) -> EventList:
    return EventList(
        events=[event_out(v) for v in page.events],
        older=None if page.older is None else str(page.older),
        newer=str(page.newer),
    )


CursorQuery = Annotated[str, Documented.of(pattern=CURSOR_PATTERN)]
StackQuery = Annotated[str, _rule(names.STACK_REF), Documented.name(names.STACK_REF)]
ServiceQuery = Annotated[str, _rule(names.SERVICE), Documented.name(names.SERVICE)]
VolumeQuery = Annotated[str, _rule(names.VOLUME), Documented.name(names.VOLUME)]
NodeQuery = Annotated[str, _rule(names.NODE), Documented.name(names.NODE)]
KindQuery = Annotated[str, Documented.of(pattern=KIND_PATTERN)]

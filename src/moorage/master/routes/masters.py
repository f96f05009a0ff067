"""/v1/masters: the masters serving this store, which of them leads (does the once-only work:
rollouts, placing waiting instances), which one answered, and how many agents each holds.

``GET /v1/masters`` → ``{"this": id, "leader": id|null, "masters": [{id, name, url, version,
started_at, seen_at, leader, this, nodes}]}``. On SQLite there is one master, and it leads.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from moorage.master.routing import api_router
from moorage.master.schemas import MasterList, MasterOut
from moorage.master.state import MasterState, State
from moorage.store.masters import LEADER, lease_view, list_masters, nodes_per_master

__all__ = ["router"]

router = api_router("/v1/masters", "masters")


def _masters(state: MasterState, session: Session) -> MasterList:
    me = state.leadership.me
    leadership = state.leadership
    seen = list_masters(session, within=leadership.ttl * 3)
    if leadership.solo:
        leader: str | None = me.id
        seen = [m for m in list_masters(session, within=10**9) if m.id == me.id]
    else:
        lease = lease_view(session, LEADER)
        leader = lease.holder if lease is not None and lease.valid else None
    counts = nodes_per_master(session)
    return MasterList(
        this=me.id,
        leader=leader,
        masters=[
            MasterOut(
                id=m.id,
                name=m.name,
                url=m.url,
                version=m.version,
                started_at=m.started_at,
                seen_at=m.seen_at,
                leader=m.id == leader,
                this=m.id == me.id,
                nodes=counts.get(m.id, 0),
            )
            for m in seen
        ],
    )


@router.get("")
async def index(state: State) -> MasterList:
    return await state.db.read(lambda session: _masters(state, session))

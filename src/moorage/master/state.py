"""What one running master holds: its store, its settings, the hub of connected agents."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from moorage.store.database import Database

if TYPE_CHECKING:
    from moorage.master.deployer import Deployer
    from moorage.master.hub import AgentHub

__all__ = ["MasterSettings", "MasterState", "State", "master_state"]


@dataclass(frozen=True, slots=True)
class MasterSettings:
    heartbeat_interval: float = 5.0
    missed_heartbeats: int = 3  # a node is offline after this many intervals without a word

    @property
    def node_timeout(self) -> float:
        return self.heartbeat_interval * self.missed_heartbeats


@dataclass
class MasterState:
    db: Database
    settings: MasterSettings
    hub: AgentHub
    deployer: Deployer
    admin_token_hashes: set[str] = field(default_factory=set)


async def master_state(request: Request) -> MasterState:
    """The dependency routes take; ``async`` so FastAPI does not send it to the threadpool."""
    state: MasterState = request.app.state.moorage
    return state


State = Annotated[MasterState, Depends(master_state)]
"""What a route takes to reach the master: ``state: State``."""

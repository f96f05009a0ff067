"""What one running master holds: its store, its settings, the hub of connected agents, the
deployer (behind its gate), its leadership and its peers."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from moorage.master.backups import BackupJobs
from moorage.master.deploy_gate import DeployGate
from moorage.master.forwarding import peer_ssl
from moorage.master.hub import AgentHub
from moorage.master.leadership import Leadership
from moorage.master.node_loss import NodeLoss
from moorage.master.peers import Peers
from moorage.master.settings import MasterSettings
from moorage.master.volume_moves import VolumeMoves
from moorage.store.database import Database

__all__ = ["MasterSettings", "MasterState", "State", "master_state"]  # MasterSettings: master/settings.py


@dataclass
class MasterState:
    db: Database
    settings: MasterSettings
    hub: AgentHub
    deployer: DeployGate  # the deployer when this master leads, else the leader by the store
    backups: BackupJobs
    moves: VolumeMoves
    leadership: Leadership
    peers: Peers
    node_loss: NodeLoss | None = None  # node declare-lost (built by app.py)
    # how an https:// peer master's certificate is checked (logs and exec passed on: forwarding.py)
    peer_ssl: ssl.SSLContext = field(default_factory=lambda: peer_ssl(None))


async def master_state(request: Request) -> MasterState:
    """The dependency routes take; ``async`` so FastAPI does not send it to the threadpool."""
    state: MasterState = request.app.state.moorage
    return state


State = Annotated[MasterState, Depends(master_state)]
"""What a route takes to reach the master: ``state: State``."""

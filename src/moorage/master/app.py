"""The master's ASGI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from moorage import __version__
from moorage.master.agent_links import AgentLinks
from moorage.master.backups import BackupJobs
from moorage.master.console import install_console
from moorage.master.deploy_gate import DeployGate
from moorage.master.deployer import Deployer
from moorage.master.errors import install_error_handlers
from moorage.master.event_feed import Followers
from moorage.master.forwarding import peer_ssl
from moorage.master.hub import AgentHub
from moorage.master.leadership import Leadership, MasterIdentity
from moorage.master.metrics import MasterMetrics, RequestTiming
from moorage.master.node_loss import NodeLoss
from moorage.master.peers import Peers
from moorage.master.request_limits import RequestLimits
from moorage.master.routes import (
    agent,
    backups,
    deployments,
    events,
    grids,
    masters,
    metrics,
    nodes,
    service_io,
    services,
    stacks,
    tokens,
    volumes,
)
from moorage.master.settings import MasterSettings
from moorage.master.state import MasterState
from moorage.master.volume_lists import VolumeLists
from moorage.master.volume_moves import VolumeMoves
from moorage.master.wakeups import Wakeups
from moorage.store.database import Database

__all__ = ["create_app", "stop_rollouts"]


async def stop_rollouts(app: FastAPI) -> None:
    """Stop the deployer's rollouts where they are (the next master resumes them), and end the
    logs and exec streams (their clients are told the master is stopping, and uvicorn does not
    wait on a followed log). Before the agents' sockets close on shutdown: otherwise every node
    looks offline to a rollout."""
    state: MasterState = app.state.moorage
    await state.leadership.stop()  # the deployer stops, and the lease goes to another master at once
    await state.moves.stop()  # running moves put their instances back on the source, then stop
    await state.hub.relay.stop()
    await app.state.event_followers.stop()


def create_app(
    db: Database, settings: MasterSettings | None = None, identity: MasterIdentity | None = None
) -> FastAPI:
    """Build the app around an opened, migrated store. ``identity``: this master among others on
    the same PostgreSQL (its name and URL as ``moorage master status`` shows them)."""
    settings = settings or MasterSettings()
    identity = identity or MasterIdentity(name="master", url="")
    wakeups = Wakeups()  # the hub's reports (and the other masters'), which the deployer waits on
    gate: DeployGate | None = None

    async def gained() -> None:
        assert gate is not None
        await gate.on_gain()

    async def lost() -> None:
        assert gate is not None
        await gate.on_loss()

    leadership = Leadership(
        db, identity, on_gain=gained, on_loss=lost, ttl=settings.lease_ttl, tick=settings.lease_tick
    )
    peers = Peers(db, leadership, wakeups)  # what the other masters hear of this one, and say
    leadership.on_look(peers.looked)
    hub = AgentHub(
        db,
        settings,
        on_status=peers.status_changed,
        on_nodes_changed=peers.nodes_changed,
        master_id=identity.id,
        push_elsewhere=peers.push_elsewhere,
    )
    peers.attach(hub)
    # the deployer's writes end with the lease check: a master that lost the lease writes nothing
    deployer = Deployer(db.fenced(leadership.fence), peers, wakeups)
    gate = DeployGate(db, deployer, leadership, peers)
    ssl_to_peers = peer_ssl(settings.tls_chain)
    # the agents as jobs reach them: connected here, or through the master that holds them
    links = AgentLinks(hub, identity, ssl_to_peers, holder=peers.holder, agents=peers)
    jobs = BackupJobs(db, links, leadership)
    jobs.deployer = gate  # restores that move a volume instance deploy again (through the leader)
    hub.job_messages, hub.jobs_lost = jobs.from_agent, jobs.connection_lost
    links.link_lost = jobs.link_lost
    moves = VolumeMoves(db, links, leadership, retention=settings.retired_retention)
    peers.on_masters_gone(moves.fail_orphans, jobs.fail_orphans)  # swept by the leader
    node_loss = NodeLoss(db, links, gate, jobs, leadership)  # node declare-lost; its restores end there
    state = MasterState(
        db=db,
        settings=settings,
        hub=hub,
        deployer=gate,
        backups=jobs,
        moves=moves,
        leadership=leadership,
        peers=peers,
        node_loss=node_loss,
        peer_ssl=ssl_to_peers,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await jobs.start()
        await node_loss.start()  # after the jobs a stopped master left were failed
        await peers.start()
        await hub.start()
        await moves.start()
        await leadership.start()  # leads at once if no other master does: the deployer starts
        try:
            yield
        finally:
            await leadership.stop()  # first (at the latest; server.py stops it before any socket closes)
            await app.state.event_followers.stop()
            await jobs.stop()
            await moves.stop()
            await links.stop()
            await hub.stop()
            await peers.stop()

    app = FastAPI(title="Moorage master", version=__version__, lifespan=lifespan)
    app.state.moorage = state
    app.state.volume_lists = VolumeLists()  # GET /v1/volumes/{grid} bodies, kept while the store is unchanged
    app.state.event_followers = Followers(db)  # GET /v1/grids/{grid}/events?follow=true
    app.state.metrics = MasterMetrics.create(db, hub)  # GET /metrics
    install_error_handlers(app)
    app.add_middleware(RequestLimits)  # the token and the size before any body is read
    app.add_middleware(RequestTiming, histogram=app.state.metrics.request_seconds)  # outermost: times all

    @app.get("/v1/ping", tags=["health"])
    async def ping() -> dict[str, str]:  # async: a sync route costs a hop to a worker thread and back
        return {"status": "ok", "version": __version__}

    for module in (
        grids,
        events,
        nodes,
        volumes,
        backups,
        stacks,
        services,
        service_io,
        deployments,
        tokens,
        masters,
        metrics,
        agent,
    ):
        app.include_router(module.router)
    app.include_router(service_io.socket_router)
    install_console(app)  # /ui
    return app

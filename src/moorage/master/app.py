"""The master's ASGI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from moorage import __version__
from moorage.master.backups import BackupJobs
from moorage.master.console import install_console
from moorage.master.deployer import Deployer
from moorage.master.errors import install_error_handlers
from moorage.master.event_feed import Followers
from moorage.master.hub import AgentHub
from moorage.master.metrics import MasterMetrics, RequestTiming
from moorage.master.request_limits import RequestLimits
from moorage.master.routes import (
    agent,
    backups,
    deployments,
    events,
    grids,
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
    await state.deployer.stop()
    await state.moves.stop()  # running moves put their instances back on the source, then stop
    await state.hub.relay.stop()
    await app.state.event_followers.stop()


def create_app(db: Database, settings: MasterSettings | None = None) -> FastAPI:
    """Build the app around an opened, migrated store."""
    settings = settings or MasterSettings()
    wakeups = Wakeups()  # the hub's reports, which the deployer waits on
    hub = AgentHub(db, settings, on_status=wakeups.status_changed, on_nodes_changed=wakeups.nodes_changed)
    deployer = Deployer(db, hub, wakeups)
    jobs = BackupJobs(db, hub)
    jobs.deployer = deployer
    hub.job_messages, hub.jobs_lost = jobs.from_agent, jobs.connection_lost
    moves = VolumeMoves(db, hub, retention=settings.retired_retention)
    state = MasterState(db=db, settings=settings, hub=hub, deployer=deployer, backups=jobs, moves=moves)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await jobs.start()
        await deployer.start()
        await hub.start()
        await moves.start()
        try:
            yield
        finally:
            await deployer.stop()  # first (at the latest; server.py stops it before any socket closes)
            await app.state.event_followers.stop()
            await jobs.stop()
            await moves.stop()
            await hub.stop()

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
        metrics,
        agent,
    ):
        app.include_router(module.router)
    app.include_router(service_io.socket_router)
    install_console(app)  # /ui
    return app

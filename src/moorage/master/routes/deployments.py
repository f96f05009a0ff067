"""/v1/deployments/{id}: how a deployment is going, instance by instance.

``?wait=S`` (at most 30): for a running deployment, answer once it has ended, or an agent
reported a change, or after S seconds: the CLI follows a deployment so, and returns the moment
it ends instead of at its next poll.

``async`` routes, each with one store call, ``Database.read`` or ``Database.run`` (see routes/volumes.py).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from moorage.master.routing import api_router
from moorage.master.schemas import DeploymentOut, DeploymentPath, service_out
from moorage.master.state import State
from moorage.store.deployments import DeploymentView, show_deployment

__all__ = ["router"]

router = api_router("/v1/deployments", "deployments")


def _deployment_out(view: DeploymentView) -> DeploymentOut:
    return DeploymentOut(
        id=view.id,
        target=view.target,
        state=view.state,
        message=view.message,
        created_at=view.created_at,
        finished_at=view.finished_at,
        services=[service_out(v) for v in view.services],
        superseded_by=view.superseded_by,
    )


@router.get("/{deployment_id}")
async def show(
    deployment_id: DeploymentPath,
    state: State,
    wait: Annotated[
        float, Query(ge=0, le=30, description="Seconds to wait for an end or a change of a running one")
    ] = 0,
) -> DeploymentOut:
    seen = state.deployer.wakeups.status_count  # before the read: a report after it ends the wait
    found = await state.db.read(lambda session: _deployment_out(show_deployment(session, deployment_id)))
    if wait <= 0 or found.state != "running":
        return found
    await state.deployer.wait_change(deployment_id, seen, wait)
    return await state.db.read(lambda session: _deployment_out(show_deployment(session, deployment_id)))

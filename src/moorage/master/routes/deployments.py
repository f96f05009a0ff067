"""/v1/deployments/{id}: how a deployment is going, instance by instance.

``async`` routes, each with one store call, ``Database.read`` or ``Database.run`` (see routes/volumes.py).
"""

from __future__ import annotations

from fastapi import APIRouter

from moorage.master.auth import Admin
from moorage.master.schemas import DeploymentOut, service_out
from moorage.master.state import State
from moorage.store.deployments import DeploymentView, show_deployment

__all__ = ["router"]

router = APIRouter(prefix="/v1/deployments", tags=["deployments"], dependencies=[Admin])


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
async def show(deployment_id: str, state: State) -> DeploymentOut:
    return await state.db.read(lambda session: _deployment_out(show_deployment(session, deployment_id)))

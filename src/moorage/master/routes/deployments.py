"""/v1/deployments/{id}: how a deployment is going, instance by instance."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from sqlalchemy import select

from moorage.errors import NotFound
from moorage.master.auth import Admin
from moorage.master.schemas import DeploymentOut, service_out
from moorage.master.state import MasterState, master_state
from moorage.store.services import service_views
from moorage.store.tables import DeploymentRow, GridRow, ServiceRow

__all__ = ["router"]

router = APIRouter(prefix="/v1/deployments", tags=["deployments"], dependencies=[Admin])
State = Annotated[MasterState, Depends(master_state)]


@router.get("/{deployment_id}")
def show(deployment_id: str, state: State) -> DeploymentOut:
    with state.db.session() as session:
        row = session.get(DeploymentRow, deployment_id)
        if row is None:
            raise NotFound(f"Deployment {deployment_id} not found")
        grid_row = session.get(GridRow, row.grid_id)
        assert grid_row is not None
        services = list(session.scalars(select(ServiceRow).where(ServiceRow.id.in_(row.service_ids))))
        order = {sid: i for i, sid in enumerate(row.service_ids)}
        services.sort(key=lambda s: order.get(s.id, 0))
        return DeploymentOut(
            id=row.id,
            target=row.target,
            state=row.state,
            message=row.message,
            created_at=row.created_at,
            finished_at=row.finished_at,
            services=[service_out(v) for v in service_views(session, grid_row, services)],
        )

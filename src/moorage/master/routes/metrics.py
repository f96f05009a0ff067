"""``GET /metrics``: the Prometheus text format (see ``moorage.master.metrics.registry``).

It takes the API's admin tokens (``Authorization: Bearer``, as Prometheus sends with
``authorization: {credentials_file: ...}``) unless the master was started with
``--metrics-without-token`` (then anyone who reaches the port reads the figures: names of grids,
and counts, never tokens or specs).
"""

from __future__ import annotations

from anyio import to_thread
from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from moorage.master.auth import require_admin
from moorage.master.metrics import MasterMetrics
from moorage.master.state import State

__all__ = ["router"]

router = APIRouter(tags=["metrics"], include_in_schema=False)  # not part of the /v1 API


@router.get("/metrics", response_class=Response)
async def metrics(request: Request, state: State) -> Response:
    if state.settings.metrics_need_token:
        await require_admin(request, state)
    registry: MasterMetrics = request.app.state.metrics
    body = await to_thread.run_sync(registry.exposition)  # reads the store
    return Response(body, media_type=CONTENT_TYPE_LATEST)

"""API request latency: a pure ASGI middleware in front of the whole app.

It times each HTTP request from the moment the app is called to the last byte of the answer and
observes it in ``moorage_api_request_duration_seconds`` labelled with the method, the route's path
template (``/v1/volumes/{grid}``, never the raw path: a bounded set of series) and the status. A
request no route matched is ``route="unmatched"``. WebSockets (the agents) are not requests here.

Cost per request: two ``perf_counter`` calls, a wrapper of ``send`` and one histogram observation
(a dict look-up for the labelled child, kept after its first use).
"""

from __future__ import annotations

import time

from prometheus_client import Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["RequestTiming"]


class RequestTiming:
    def __init__(self, app: ASGIApp, histogram: Histogram) -> None:
        self.app = app
        self.histogram = histogram
        self._children: dict[tuple[str, str, int], Histogram] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # an app that raised before answering: the server answers 500
        started = time.perf_counter()

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            key = (str(scope["method"]), _route(scope), status)
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = self.histogram.labels(key[0], key[1], str(key[2]))
            child.observe(time.perf_counter() - started)


def _route(scope: Scope) -> str:
    route = scope.get("route")  # the FastAPI route that matched, set on this scope by the router
    if route is not None:
        return str(route.path)
    if "endpoint" in scope:  # a mounted app (the console's static files)
        return f"{scope.get('root_path', '')}/{{path}}"
    return "unmatched"

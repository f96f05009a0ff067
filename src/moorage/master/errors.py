"""The one place that maps errors to HTTP responses.

MoorageError        -> its status, {"error": message or {field: message}}
validation of input -> 422 {"error": {"field.path": "message"}} (a lone surrogate in a string too)
malformed JSON      -> 400 {"error": "Malformed JSON body: …"} (also: not UTF-8, nested too deeply)
not JSON at all     -> 415 {"error": "Send the body as JSON …"}
a unique name taken by a request at the same time (IntegrityError)
                    -> 409 {"error": {"name": "… already exists"}}
too large a body    -> 413, no or a wrong token -> 401, both before the body is read; a body
                       too slow to arrive -> 408
                       (``moorage.master.request_limits``)
unknown route       -> 404, wrong method -> 405 with the route's Allow header, both as {"error": "…"}
anything else       -> 500 {"error": "Internal error …"} and a log line (a bug, never client input)

``ERROR_STATUSES`` is the one table of these statuses; ``error_responses`` picks the ones a route
can answer, for the OpenAPI document (``moorage.master.routing`` applies it to every API route).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from moorage.errors import MoorageError

__all__ = ["ERROR_STATUSES", "ErrorOut", "error_responses", "install_error_handlers", "validation_errors"]

log = logging.getLogger("moorage.master")


class ErrorOut(BaseModel):
    """Every error answer: a sentence, or {field path: sentence} for input that breaks rules."""

    error: str | dict[str, str]


ERROR_STATUSES: dict[int, str] = {
    400: "Malformed JSON body (not JSON, not UTF-8, nested too deeply)",
    401: "No bearer token, or one this master does not know",
    403: "A token that may not do this (a grid join token on an admin route)",
    404: "No such grid, node, stack, service, volume or deployment",
    408: "The request body did not arrive in time",
    409: "The request clashes with the current state (or with a request made at the same time)",
    413: "The request body is larger than the master accepts",
    415: "The request body is not JSON",
    422: "Input that breaks a rule: {field path: what is wrong and how to fix it}",
}
"""Every error status the API answers with, and what it means."""


def error_responses(statuses: Iterable[int]) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of these error statuses, from ``ERROR_STATUSES``."""
    return {status: {"model": ErrorOut, "description": ERROR_STATUSES[status]} for status in sorted(statuses)}


_TAKEN = {
    "grids": "Grid with given name already exists",
    "nodes": "Node with given name already exists in this grid",
    "stacks": "Stack with given name already exists in this grid; use 'moorage stack upgrade NAME FILE'",
    "stack_revisions": "Stack was changed by another request at the same time; send the upgrade again",
    "services": "Service with given name already exists; use 'moorage service scale' or remove it first",
    "volumes": "Volume with given name already exists",
}
_SQLITE_TABLE_RE = re.compile(r"UNIQUE constraint failed: (\w+)\.")


def _field(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    out = ""
    for part in parts:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out or "body"


def validation_errors(errors: list[dict[str, object]]) -> dict[str, str]:
    """Pydantic's error list as {field path: plain sentence}."""
    out: dict[str, str] = {}
    for err in errors:
        loc = err.get("loc", ())
        field = _field(tuple(loc) if isinstance(loc, list | tuple) else ())
        kind = str(err.get("type", ""))
        msg = str(err.get("msg", "is not valid"))
        if kind == "missing":
            msg = "is required"
        elif kind == "extra_forbidden":
            msg = "is not a known field; remove it"
        elif msg.startswith("Value error, "):
            msg = msg.removeprefix("Value error, ")
        out.setdefault(field, msg)
    return out


async def _on_moorage_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MoorageError)
    return JSONResponse({"error": exc.payload()}, status_code=exc.status)


async def _on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    json_errors = [e for e in errors if e.get("type") == "json_invalid"]
    if json_errors:
        detail = json_errors[0].get("ctx", {}).get("error", "not valid JSON")
        return JSONResponse(
            {
                "error": f"Malformed JSON body: {detail}; send a JSON object with Content-Type: application/json"
            },
            status_code=400,
        )
    return JSONResponse({"error": validation_errors(errors)}, status_code=422)


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else "Request not valid"
    headers = dict(exc.headers or {})
    if exc.status_code == 404 and message == "Not Found":
        message = "No such API route; see /openapi.json for the routes this master serves"
    elif exc.status_code == 405:
        allowed = _allowed_methods(request)
        headers["Allow"] = ", ".join(allowed)
        message = f"Method {request.method} not allowed on this route; it takes {', '.join(allowed)}"
    return JSONResponse({"error": message}, status_code=exc.status_code, headers=headers)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> list[str]:
    """The methods some route at this path takes (FastAPI makes one route per method, and the
    router's 405 names only the first one it tried)."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    ]


def _taken_table(exc: IntegrityError) -> str | None:
    diag = getattr(exc.orig, "diag", None)  # psycopg: the table of the constraint
    table = getattr(diag, "table_name", None)
    if isinstance(table, str):
        return table
    found = _SQLITE_TABLE_RE.search(str(exc.orig))
    return found.group(1) if found else None


async def _on_integrity_error(request: Request, exc: Exception) -> JSONResponse:
    """A unique name (or revision) that another request took between this one's check and its
    write: the check's answer, as a 409."""
    assert isinstance(exc, IntegrityError)
    message = _TAKEN.get(_taken_table(exc) or "")
    if message is not None:
        return JSONResponse({"error": {"name": message}}, status_code=409)
    log.warning("integrity error on %s %s: %s", request.method, request.url.path, exc.orig)
    return JSONResponse(
        {"error": "The request clashes with a change made at the same time; send it again"}, status_code=409
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(
        {"error": "Internal error in the master; its log has the details. Please report it."}, status_code=500
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(MoorageError, _on_moorage_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(IntegrityError, _on_integrity_error)
    app.add_exception_handler(Exception, _on_unexpected)

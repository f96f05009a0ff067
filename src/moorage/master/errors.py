"""The one place that maps errors to HTTP responses.

MoorageError        -> its status, {"error": message or {field: message}}
validation of input -> 422 {"error": {"field.path": "message"}}
malformed JSON      -> 400 {"error": "Malformed JSON body: …"}
unknown route       -> 404, wrong method -> 405, both as {"error": "…"}
anything else       -> 500 {"error": "Internal error …"} and a log line (a bug, never client input)
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from moorage.errors import MoorageError

__all__ = ["install_error_handlers", "validation_errors"]

log = logging.getLogger("moorage.master")


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


async def _on_http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else "Request not valid"
    if exc.status_code == 404 and message == "Not Found":
        message = "No such API route; see /openapi.json for the routes this master serves"
    elif exc.status_code == 405:
        message = "Method not allowed on this route; see /openapi.json"
    return JSONResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(
        {"error": "Internal error in the master; its log has the details. Please report it."}, status_code=500
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(MoorageError, _on_moorage_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)

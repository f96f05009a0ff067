"""The API's routes: how every one reads a JSON body, and which error statuses it documents.

``api_router(prefix, tag)`` is the ``APIRouter`` of each ``/v1`` route module: the admin token
check, and ``ApiRoute`` for every route, which

- answers 415 for a body that is not JSON (``Content-Type`` other than ``application/json``),
- decodes the body once: a body that is not UTF-8, not JSON or nested too deeply is a 400
  ``Malformed JSON body``; a string holding a lone surrogate (``"\\ud800"``, which is no text and
  which no store or engine can take) is a 422 naming the field, for every route and every field,
- documents the error statuses the route can answer (``moorage.master.errors.ERROR_STATUSES``):
  401 and 403 on all, 404 with a name in the path, 400/408/413/415/422 with a body, 422 with
  parameters, 409 on writes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from moorage.master.auth import Admin
from moorage.master.errors import ERROR_STATUSES, error_responses
from moorage.model.quoting import shown

__all__ = ["ApiRoute", "api_router"]

_WRITES = {"POST", "PUT", "PATCH", "DELETE"}
_NOT_JSON = "Send the body as JSON with 'Content-Type: application/json'"


def api_router(prefix: str, tag: str) -> APIRouter:
    """The router of one ``/v1`` area: admin routes made of ``ApiRoute``."""
    return APIRouter(prefix=prefix, tags=[tag], dependencies=[Admin], route_class=ApiRoute)


class ApiRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        own_errors = {int(s) for s in self.responses if str(s).isdigit() and int(s) in ERROR_STATUSES}
        documented = error_responses(self._error_statuses() | own_errors)
        for status, extra in self.responses.items():  # a route's own words for a status win
            documented[status] = {**documented.get(status, {}), **extra}
        self.responses = documented

    def _error_statuses(self) -> set[int]:
        statuses = {401, 403}
        params = self.dependant.path_params or self.dependant.query_params
        if self.dependant.path_params:
            statuses.add(404)
        if params or self.body_field is not None:
            statuses.add(422)
        if self.body_field is not None:
            statuses |= {400, 408, 413, 415}
        if (self.methods or set()) & _WRITES:
            statuses.add(409)
        return statuses

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler

        async def checked(request: Request) -> Response:
            await _check_json_body(request)
            return await handler(request)

        return checked


async def _check_json_body(request: Request) -> None:
    """Decode the body (kept on ``request`` for the route) or refuse it, as the module says."""
    body = await request.body()
    if not body:
        return
    content_type = request.headers.get("content-type")
    if content_type is not None and not _is_json(content_type):
        raise HTTPException(415, f"{_NOT_JSON}, not '{shown(content_type)}'")
    try:
        data = await request.json()
    except UnicodeDecodeError as error:
        _malformed(f"the body is not UTF-8 text (byte 0x{body[error.start]:02X} at offset {error.start})")
    except json.JSONDecodeError as error:
        _malformed(f"{error.msg} at line {error.lineno}, column {error.colno}")
    except RecursionError:
        _malformed("it is nested too deeply")
    if (found := _lone_surrogate(data)) is not None:
        loc, text = found
        raise RequestValidationError(
            [
                {
                    "type": "string_unicode",
                    "loc": ("body", *loc),
                    "msg": (
                        f"holds a lone surrogate (U+{ord(text):04X}), which is not text; send valid "
                        "UTF-8 (characters beyond U+FFFF as one code point or a surrogate pair)"
                    ),
                    "input": None,
                }
            ]
        )


def _is_json(content_type: str) -> bool:
    kind = content_type.partition(";")[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


def _malformed(detail: str) -> NoReturn:
    raise RequestValidationError(
        [{"type": "json_invalid", "loc": ("body",), "msg": "JSON decode error", "ctx": {"error": detail}}]
    )


def _lone_surrogate(data: object) -> tuple[tuple[int | str, ...], str] | None:
    """The path of the first string (value or key) in ``data`` with a lone surrogate, and it."""
    todo: list[tuple[tuple[int | str, ...], object]] = [((), data)]
    while todo:
        loc, value = todo.pop()
        if isinstance(value, str):
            if (bad := _surrogate_in(value)) is not None:
                return loc, bad
        elif isinstance(value, dict):
            for key, item in value.items():
                if (bad := _surrogate_in(key)) is not None:  # the key as written, escaped
                    return (*loc, key.encode("utf-8", "backslashreplace").decode()), bad
                todo.append(((*loc, key), item))
        elif isinstance(value, list):
            todo.extend(((*loc, index), item) for index, item in enumerate(value))
    return None


def _surrogate_in(text: str) -> str | None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return text[error.start]
    return None

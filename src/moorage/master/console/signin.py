"""Who is looking at the console: the API's admin token, from the cookie or a bearer header."""

from __future__ import annotations

from urllib.parse import parse_qs

from fastapi import Request
from starlette.responses import Response

from moorage.errors import InvalidInput, MoorageError
from moorage.master.auth import require_admin
from moorage.master.state import MasterState

__all__ = ["COOKIE", "MAX_FORM_BYTES", "check_token", "forget_token", "keep_token", "read_form", "signed_in"]

COOKIE = "moorage_token"
MAX_FORM_BYTES = 4096  # the sign-in form: a token and a page to go back to


def _with_bearer(request: Request, token: str) -> Request:
    """The request as if it had sent ``Authorization: Bearer TOKEN`` (and no other authorization)."""
    headers = [(k, v) for k, v in request.scope["headers"] if k != b"authorization"]
    headers.append((b"authorization", f"Bearer {token}".encode("latin-1", "replace")))
    return Request({**request.scope, "headers": headers})


async def check_token(request: Request, state: MasterState, token: str) -> None:
    """Raise the API's own 401/403 error unless ``token`` is an admin token."""
    await require_admin(_with_bearer(request, token), state)


async def signed_in(request: Request, state: MasterState) -> MoorageError | None:
    """None when the request carries an admin token (``Authorization: Bearer`` first, else the
    console's cookie); else the API's error saying why not."""
    try:
        if request.headers.get("authorization") is None and (token := request.cookies.get(COOKIE)):
            await check_token(request, state, token)
        else:
            await require_admin(request, state)
    except MoorageError as error:
        return error
    return None


def keep_token(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,  # no script reads it
        samesite="strict",  # no other site's page sends it
        secure=request.url.scheme == "https",
        path="/ui",  # the API never takes it: a cookie cannot authorize a write
    )


def forget_token(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/ui", httponly=True, samesite="strict")


async def read_form(request: Request) -> dict[str, str]:
    """A small ``application/x-www-form-urlencoded`` body, read up to ``MAX_FORM_BYTES``."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise InvalidInput.one("body", f"The form is larger than {MAX_FORM_BYTES} bytes")
    try:
        fields = parse_qs(body.decode(), keep_blank_values=True, max_num_fields=10)
    except (UnicodeDecodeError, ValueError) as err:
        raise InvalidInput.one("body", f"Not a form: {err}") from err
    return {key: values[0] for key, values in fields.items()}

"""The console's pages (``/ui``), its live JSON, and signing in and out.

Every page and the live JSON take the API's admin token: ``Authorization: Bearer`` (scripts) or
the cookie the sign-in page sets. A page asked for without one redirects to the sign-in page; the
live JSON answers the API's 401/403 (the script then goes to the sign-in page).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from moorage.errors import Forbidden, MoorageError
from moorage.master.console.pages import GridPage, grid_page, grids_page
from moorage.master.console.signin import COOKIE, check_token, forget_token, keep_token, read_form, signed_in
from moorage.master.console.templating import SECURITY_HEADERS, templates
from moorage.master.schemas import GridPath
from moorage.master.state import State

__all__ = ["POLL_SECONDS", "SECTIONS", "router"]

router = APIRouter(prefix="/ui", include_in_schema=False)

POLL_SECONDS = 1.5  # how often an open page asks for fresh sections
SECTIONS = ("nodes", "deployments", "stacks", "volumes", "events")  # ids in grid.html, each a _NAME.html


def _html(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    return templates.TemplateResponse(
        request, name, {"poll_ms": int(POLL_SECONDS * 1000), **context}, status_code=status,
        headers=SECURITY_HEADERS,
    )  # fmt: skip


def _back_to(target: str | None) -> str:
    """A page of the console to return to after signing in; anything else is the console's start."""
    if not target:
        return "/ui"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/ui") or target.startswith("//"):
        return "/ui"
    return target


async def _refused(request: Request, state: State) -> Response | None:
    """None when signed in; else the way to the sign-in page (dropping a cookie no longer good)."""
    error = await signed_in(request, state)
    if error is None:
        return None
    response = RedirectResponse(f"/ui/login?next={quote(request.url.path)}", status_code=303)
    if request.cookies.get(COOKIE):
        forget_token(response)
    return response


@router.get("/login")
async def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    return _html(request, "login.html", {"next": _back_to(next), "error": None})


@router.post("/login")
async def login(request: Request, state: State) -> Response:
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise Forbidden(f"Sign-in from another site ({origin}) refused; open the console itself")
    form = await read_form(request)
    token = form.get("token", "").strip()
    back = _back_to(form.get("next"))
    try:
        if not token:
            raise MoorageError("Paste an admin token (the master's data dir has one: admin.token)")
        await check_token(request, state, token)
    except MoorageError as error:
        return _html(request, "login.html", {"next": back, "error": error.message}, status=401)
    response = RedirectResponse(back, status_code=303)
    keep_token(request, response, token)
    return response


@router.post("/logout")
async def logout() -> Response:
    response = RedirectResponse("/ui/login", status_code=303)
    forget_token(response)
    return response


@router.get("")
@router.get("/")
async def grids(request: Request, state: State) -> Response:
    if (refused := await _refused(request, state)) is not None:
        return refused
    return _html(request, "grids.html", {"grids": await state.db.read(grids_page)})


@router.get("/grids/{grid}")
async def grid(request: Request, grid: GridPath, state: State) -> Response:
    if (refused := await _refused(request, state)) is not None:
        return refused
    try:
        page = await state.db.read(lambda session: grid_page(session, grid))
    except MoorageError as error:
        return _html(request, "error.html", {"error": error.message}, status=error.status)
    return _html(request, "grid.html", {"page": page, "sections": SECTIONS})


def render_sections(page: GridPage) -> dict[str, str]:
    return {name: templates.get_template(f"_{name}.html").render(page=page) for name in SECTIONS}


@router.get("/grids/{grid}/live")
async def live(request: Request, grid: GridPath, state: State) -> JSONResponse:
    """The grid page's sections rendered again (HTML, escaped), for the page's script."""
    error = await signed_in(request, state)
    if error is not None:
        raise error
    page = await state.db.read(lambda session: grid_page(session, grid))
    return JSONResponse({"sections": render_sections(page)}, headers=SECURITY_HEADERS)

"""The web console at ``/ui``: a read-only view of grids, nodes, stacks, volumes and deployments.

Server-rendered Jinja2 templates (autoescaped: node names and labels come from agents) and one
small script that polls the page's JSON every ``POLL_SECONDS`` and swaps in the sections the server
rendered again. No build step: the templates and static files ship in the package.

Signing in takes an admin token (the API's), kept in an HttpOnly, SameSite=Strict cookie limited to
``/ui``; scripts send ``Authorization: Bearer`` instead. Either way the one check is
``moorage.master.auth.require_admin``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from moorage.master.console.routes import router

__all__ = ["install_console"]

STATIC = Path(__file__).with_name("static")


def install_console(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="console-static")

"""/v1/grids: create, list, show, remove; a grid's join token (show, rotate).

``async`` routes, each with one store call, ``Database.read`` or ``Database.run`` (see routes/volumes.py).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from moorage.master.routing import api_router
from moorage.master.schemas import GridCreate, GridList, GridOut, GridPath, TokenOut, grid_out
from moorage.master.state import State
from moorage.store.grids import (
    create_grid,
    get_grid_row,
    list_grids,
    remove_grid,
    rotate_join_token,
    show_grid,
)

__all__ = ["router"]

router = api_router("/v1/grids", "grids")


@router.post("", status_code=201)
async def create(body: GridCreate, state: State) -> GridOut:
    return await state.db.run(lambda session: grid_out(create_grid(session, body.name)))


@router.get("")
async def index(state: State) -> GridList:
    return await state.db.read(lambda session: GridList(grids=[grid_out(g) for g in list_grids(session)]))


@router.get("/{grid}")
async def show(grid: GridPath, state: State) -> GridOut:
    return await state.db.read(lambda session: grid_out(show_grid(session, grid)))


@router.delete("/{grid}")
async def remove(grid: GridPath, state: State) -> dict[str, str]:
    def work(session: Session) -> None:
        remove_grid(session, grid)

    await state.db.run(work)
    return {"removed": grid}


@router.get("/{grid}/token")
async def token(grid: GridPath, state: State) -> TokenOut:
    return await state.db.read(lambda session: TokenOut(token=get_grid_row(session, grid).join_token))


@router.post("/{grid}/token")
async def rotate(grid: GridPath, state: State) -> TokenOut:
    return await state.db.run(lambda session: TokenOut(token=rotate_join_token(session, grid)))

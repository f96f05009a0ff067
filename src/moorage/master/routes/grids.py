"""/v1/grids: create, list, show, remove; a grid's join token (show, rotate)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from moorage.master.auth import Admin
from moorage.master.schemas import GridCreate, GridList, GridOut, TokenOut, grid_out
from moorage.master.state import MasterState, master_state
from moorage.store.grids import (
    create_grid,
    get_grid_row,
    list_grids,
    remove_grid,
    rotate_join_token,
    show_grid,
)

__all__ = ["router"]

router = APIRouter(prefix="/v1/grids", tags=["grids"], dependencies=[Admin])
State = Annotated[MasterState, Depends(master_state)]


@router.post("", status_code=201)
def create(body: GridCreate, state: State) -> GridOut:
    with state.db.session() as session:
        return grid_out(create_grid(session, body.name))


@router.get("")
def index(state: State) -> GridList:
    with state.db.session() as session:
        return GridList(grids=[grid_out(g) for g in list_grids(session)])


@router.get("/{grid}")
def show(grid: str, state: State) -> GridOut:
    with state.db.session() as session:
        return grid_out(show_grid(session, grid))


@router.delete("/{grid}")
def remove(grid: str, state: State) -> dict[str, str]:
    with state.db.session() as session:
        remove_grid(session, grid)
    return {"removed": grid}


@router.get("/{grid}/token")
def token(grid: str, state: State) -> TokenOut:
    with state.db.session() as session:
        return TokenOut(token=get_grid_row(session, grid).join_token)


@router.post("/{grid}/token")
def rotate(grid: str, state: State) -> TokenOut:
    with state.db.session() as session:
        return TokenOut(token=rotate_join_token(session, grid))

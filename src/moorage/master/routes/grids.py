"""/v1/grids: create, list, show, remove; a grid's join token (rotate).

The join token is stored hashed: it is in the answer of the create and of each rotation, and
nowhere else. Rotating closes the agent connections the old one admitted (a node reconnects at
once with its own credential; an agent without one must be given the new token).

``async`` routes, each with one store call, ``Database.read`` or ``Database.run`` (see routes/volumes.py).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from moorage.errors import Conflict
from moorage.master.routing import api_router
from moorage.master.schemas import GridCreate, GridList, GridOut, GridPath, grid_out
from moorage.master.state import State
from moorage.master.token_schemas import GridCreated, JoinTokenOut
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
async def create(body: GridCreate, state: State) -> GridCreated:
    def work(session: Session) -> GridCreated:
        grid, join_token = create_grid(session, body.name)
        return GridCreated(**grid_out(grid).model_dump(), join_token=join_token)

    return await state.db.run(work)


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


@router.get("/{grid}/token", responses={409: {"description": "The join token cannot be shown again"}})
async def token(grid: GridPath, state: State) -> JoinTokenOut:
    await state.db.read(lambda session: get_grid_row(session, grid))  # 404 for an unknown grid
    raise Conflict(
        f"Grid {grid}'s join token is stored hashed and cannot be shown again; make a new one with "
        f"'moorage grid token --rotate' (POST /v1/grids/{grid}/token). Joined nodes keep working: "
        "each has its own credential"
    )


@router.post("/{grid}/token")
async def rotate(grid: GridPath, state: State) -> JoinTokenOut:
    token = await state.db.run(lambda session: rotate_join_token(session, grid))
    return JoinTokenOut(token=token, disconnected=await state.hub.drop_join_admitted(grid))

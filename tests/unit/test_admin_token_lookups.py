"""The admin token is looked up once per request, counted as SQL statements on the master's store.

A request with a body is checked by the request-limits middleware before its body is read; the
route's own check then takes that verdict (``request.state``) instead of reading the store again.
A request without a body is checked by the route alone. Each case below counts the statements
that read ``admin_tokens`` (and the grids' join tokens, read only for a token that is no admin
token) and those that write ``last_used_at``, against the whole app on a SQLite file.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, event

from moorage.master.app import create_app
from moorage.store.database import Database
from moorage.store.tokens import create_admin_token


@dataclass
class TokenStatements:
    """The statements on the token tables, of every engine in this process (the store has two
    for SQLite: the writer and the event loop's reader)."""

    seen: list[str] = field(default_factory=list)

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        text = " ".join(statement.split()).lower()
        if "admin_tokens" in text or "join_token_hash" in text:
            self.seen.append(text)

    def take(self) -> dict[str, int]:
        counts = {
            "token reads": sum(s.startswith("select") and "from admin_tokens" in s for s in self.seen),
            "join token reads": sum(s.startswith("select") and "join_token_hash" in s for s in self.seen),
            "last used writes": sum(s.startswith("update admin_tokens") for s in self.seen),
        }
        self.seen.clear()
        return counts


@pytest.fixture
def statements() -> Iterator[TokenStatements]:
    found = TokenStatements()
    event.listen(Engine, "before_cursor_execute", found)
    try:
        yield found
    finally:
        event.remove(Engine, "before_cursor_execute", found)


Session = Callable[[httpx.AsyncClient, str], Awaitable[None]]


def run_against_master(tmp_path: Path, session: Session) -> None:
    """``session(client, admin_secret)`` against the whole app (its lifespan too) on a SQLite file."""
    db = Database(f"sqlite:///{tmp_path / 'store.db'}")
    db.migrate()
    with db.session() as s:
        secret = create_admin_token(s).secret
    app = create_app(db)

    async def main() -> None:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://master") as client:
                await session(client, secret)

    try:
        asyncio.run(main())
    finally:
        db.dispose()


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


ONE_READ = {"token reads": 1, "join token reads": 0, "last used writes": 0}


def test_each_request_reads_its_token_once(tmp_path: Path, statements: TokenStatements) -> None:
    async def session(client: httpx.AsyncClient, admin: str) -> None:
        statements.take()
        made = await client.post("/v1/grids", json={"name": "g1"}, headers=bearer(admin))
        assert made.status_code == 201, made.text
        assert statements.take() == {**ONE_READ, "last used writes": 1}, "a body: the middleware's check only"

        volume = {"name": "data", "scope": "instance", "driver": "local"}
        created = await client.post("/v1/volumes/g1", json=volume, headers=bearer(admin))
        assert created.status_code == 201, created.text
        assert statements.take() == ONE_READ, "last_used_at was written a moment ago"

        listed = await client.get("/v1/volumes/g1", headers=bearer(admin))
        assert [v["name"] for v in listed.json()["volumes"]] == ["data"]
        assert statements.take() == ONE_READ, "no body: the route's check only"

        removed = await client.delete("/v1/volumes/g1/data", headers=bearer(admin))
        assert removed.status_code == 200, removed.text
        assert statements.take() == ONE_READ

        bad = await client.post("/v1/volumes/g1", json=volume, headers=bearer("not-a-token"))
        assert bad.status_code == 401
        assert "Token not accepted by this master" in bad.json()["error"]
        assert statements.take() == {**ONE_READ, "join token reads": 1}

        none = await client.post("/v1/volumes/g1", json=volume)
        assert none.status_code == 401 and "Missing bearer token" in none.json()["error"]
        assert statements.take() == {**ONE_READ, "token reads": 0}, "no token: nothing to look up"

    run_against_master(tmp_path, session)


def test_a_join_token_is_refused_with_one_look_up(tmp_path: Path, statements: TokenStatements) -> None:
    async def session(client: httpx.AsyncClient, admin: str) -> None:
        assert (await client.post("/v1/grids", json={"name": "g1"}, headers=bearer(admin))).status_code == 201
        join = (await client.post("/v1/grids/g1/token", headers=bearer(admin))).json()["token"]
        statements.take()
        refused = await client.post("/v1/grids", json={"name": "g2"}, headers=bearer(join))
        assert refused.status_code == 403
        assert "grid join token, for agents only" in refused.json()["error"]
        assert statements.take() == {**ONE_READ, "join token reads": 1}

    run_against_master(tmp_path, session)


def test_a_revoked_token_stops_at_its_next_request(tmp_path: Path, statements: TokenStatements) -> None:
    async def session(client: httpx.AsyncClient, admin: str) -> None:
        ci = (await client.post("/v1/tokens", json={"name": "ci"}, headers=bearer(admin))).json()["token"]
        statements.take()
        made = await client.post("/v1/grids", json={"name": "g1"}, headers=bearer(ci))
        assert made.status_code == 201, made.text
        assert statements.take() == {**ONE_READ, "last used writes": 1}, "its first use is recorded"

        assert (await client.delete("/v1/tokens/ci", headers=bearer(admin))).status_code == 200
        statements.take()
        refused = await client.post("/v1/grids", json={"name": "g2"}, headers=bearer(ci))
        assert refused.status_code == 401
        assert "Token not accepted by this master" in refused.json()["error"]
        assert statements.take() == {**ONE_READ, "join token reads": 1}
        grids = (await client.get("/v1/grids", headers=bearer(admin))).json()["grids"]
        assert [g["name"] for g in grids] == ["g1"], "the refused request made nothing"

    run_against_master(tmp_path, session)

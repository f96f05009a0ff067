"""A store made before node credentials (migration 0005), opened by today's master: every node
kept, the old join token still admits, each old node gets its credential at its next hello (once,
trust on first use), the old admin token is named ``admin``, bad node names become removable."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text

from moorage.model.names import NODE
from moorage.store.database import MIGRATIONS, normalize_url
from moorage.store.tokens import hash_token
from tests.support.fake_agent import hello, join
from tests.support.processes import MasterProcess


def _store_at_0005(url: str, join_token: str, admin_token: str, nodes: dict[str, str]) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    engine = create_engine(normalize_url(url))
    now = datetime.now(UTC)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0005")
        conn.execute(
            text("INSERT INTO admin_tokens (token_hash, created_at) VALUES (:h, :t)"),
            {"h": hash_token(admin_token), "t": now},
        )
        conn.execute(
            text("INSERT INTO grids (name, join_token, created_at, updated_at) VALUES ('old', :j, :t, :t)"),
            {"j": join_token, "t": now},
        )
        for node_id, name in nodes.items():
            conn.execute(
                text(
                    "INSERT INTO nodes (id, grid_id, name, status, status_since, last_seen_at, labels, info,"
                    " created_at, updated_at) VALUES (:id, 1, :name, 'offline', :t, :t, '{}', :info, :t, :t)"
                ),
                {
                    "id": node_id,
                    "name": name,
                    "t": now,
                    "info": json.dumps({"cpus": 1, "memory": 1, "drivers": []}),
                },
            )
    engine.dispose()


def test_an_old_store_upgrades_with_trust_on_first_use(tmp_path: Path, db_url: str) -> None:
    url = db_url
    join_token, admin_token = "old-join-token-" + uuid.uuid4().hex, "old-admin-" + uuid.uuid4().hex
    good_id, bad_id = uuid.uuid4().hex, uuid.uuid4().hex
    _store_at_0005(url, join_token, admin_token, {good_id: "old-node", bad_id: "bad/name\n\x1b[2J"})
    master = MasterProcess(data_dir=tmp_path / "master", db_url=url).start()
    try:
        with master.client(admin_token) as admin:
            assert [t["name"] for t in admin.get("/v1/tokens").json()["tokens"]] == ["admin"]
            nodes = admin.get("/v1/nodes/old").json()["nodes"]
            names = {n["id"]: n["name"] for n in nodes}
            assert names[good_id] == "old-node"
            renamed = names[bad_id]
            assert renamed.startswith("node-") and NODE.error(renamed) is None
            assert admin.delete(f"/v1/nodes/old/{renamed}").status_code == 200, "a bad name can be removed"

            ws, welcome = join(master.url, join_token, hello("old-node", node_id=good_id))
            assert welcome["type"] == "welcome" and welcome["credential"], "its credential, once"
            ws.close()
            again, reply = join(master.url, join_token, hello("old-node", node_id=good_id))
            assert reply["type"] == "error" and "already has its own credential" in reply["message"]
            again.close()
            ws, reply = join(master.url, welcome["credential"], hello("old-node", node_id=good_id))
            assert reply["type"] == "welcome"
            ws.close()
        engine = create_engine(normalize_url(url))
        with engine.connect() as conn:
            stored = [str(v) for row in conn.execute(text("SELECT * FROM grids")) for v in row]
        engine.dispose()
        assert join_token not in stored and hash_token(join_token) in stored
    finally:
        master.stop()

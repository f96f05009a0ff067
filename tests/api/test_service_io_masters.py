"""`moorage service logs` and `service exec` with two masters on one PostgreSQL, as a user behind
a load balancer meets them: whichever master the command reaches, it sees every instance, also
those whose node's agent is connected to the other master (the request goes on there:
master/forwarding.py). Real masters, the real CLI, fake agents on real sockets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tests.conftest import _db_url
from tests.support.fake_agent import FakeNode
from tests.support.fake_engine import FakeEngine, FakeExec
from tests.support.processes import MasterProcess
from tests.support.waiting import wait_until

GRID = "io"


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    yield from _db_url("postgresql", tmp_path)  # skipped without PostgreSQL (failed on CI)


def _cli(master: MasterProcess, token: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOORAGE_")}
    env |= {
        "MOORAGE_CONFIG": str(tmp_path / "config.json"),
        "MOORAGE_URL": master.url,
        "MOORAGE_TOKEN": token,
        "MOORAGE_GRID": GRID,
    }
    return subprocess.run(
        [sys.executable, "-m", "moorage", *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_logs_and_exec_reach_instances_whose_agent_the_other_master_holds(
    tmp_path: Path, pg_url: str
) -> None:
    a = MasterProcess(data_dir=tmp_path / "a", db_url=pg_url).start()
    b = MasterProcess(data_dir=tmp_path / "b", db_url=pg_url).start()
    engines = {
        "node-1": FakeEngine(images=("busybox:local",)),
        "node-2": FakeEngine(images=("busybox:local",)),
    }
    try:
        token = next(m.admin_token for m in (a, b) if (m.data_dir / "admin.token").exists())
        with a.client(token) as http:
            assert http.post("/v1/grids", json={"name": GRID}).status_code in (200, 201)
            join = http.post(f"/v1/grids/{GRID}/token").json()["token"]
            created = http.post(
                f"/v1/services/{GRID}",
                json={"name": "web", "image": "busybox:local", "cmd": "sleep 3600", "instances": 2},
            )
            assert created.status_code == 201, created.text
        with (
            FakeNode(a.url, join, "node-1", engine=engines["node-1"]) as one,
            FakeNode(b.url, join, "node-2", engine=engines["node-2"]) as two,
            a.client(token) as http,
        ):
            wait_until(lambda: one.welcomes and two.welcomes, 15, "both fake nodes to join")

            def held_by() -> dict[str, str | None] | None:
                """node -> the URL of the master holding its agent, once both masters and nodes say."""
                masters = {m["name"]: m["url"] for m in http.get("/v1/masters").json()["masters"]}
                nodes = http.get(f"/v1/nodes/{GRID}").json()["nodes"]
                found = {n["name"]: masters.get(n["master"]) for n in nodes if n["status"] == "online"}
                return found if len(found) == 2 and all(found.values()) else None

            assert wait_until(held_by, 15, "each node online under its master") == {
                "node-1": a.url,
                "node-2": b.url,
            }

            # the leader reads which nodes the other master holds at each look: let it look twice
            # after the store said so, then the deploy sees both nodes (else ha puts both on one)
            def leader_seen() -> datetime:
                listed = http.get("/v1/masters").json()["masters"]
                return datetime.fromisoformat(next(m["seen_at"] for m in listed if m["leader"]))

            since = leader_seen()
            for _ in range(2):
                since = wait_until(
                    lambda s=since: (t := leader_seen()) > s and t, 10, "the leader to look again"
                )
            deployment = http.post(f"/v1/services/{GRID}/null/web/deploy").json()["deployment"]
            wait_until(
                lambda: http.get(f"/v1/deployments/{deployment}").json()["state"] == "success",
                20,
                "web to run on both nodes",
            )
            where = {n: next(iter(e.by_id.values())).name for n, e in engines.items() if e.by_id}
            assert sorted(where) == ["node-1", "node-2"], "one instance on each node (ha)"
            here, there = where["node-1"], where["node-2"]  # node-1's agent is a's, node-2's b's
            engines["node-1"].print(here, "from the node of a\n")
            engines["node-2"].print(there, "from the node of b\n")

            for master in (a, b):  # the same answer, whichever master the balancer picked
                logs = _cli(master, token, tmp_path, "service", "logs", "web")
                assert logs.returncode == 0, logs.stderr
                assert sorted(logs.stdout.splitlines()) == sorted(
                    [f"{here}@node-1 | from the node of a", f"{there}@node-2 | from the node of b"]
                ), master.url
            number = int(there.rsplit("-", 1)[1])
            as_json = _cli(a, token, tmp_path, "service", "logs", "web", str(number), "--json")
            assert [json.loads(line) for line in as_json.stdout.splitlines()] == [
                {"instance": number, "node": "node-2", "stream": "stdout", "line": "from the node of b"}
            ]

            done = _cli(a, token, tmp_path, "service", "exec", "web", str(number), "--", "echo", "PONG")
            assert (done.returncode, done.stdout, done.stderr) == (0, "PONG\n", "")
            code = _cli(a, token, tmp_path, "service", "exec", "web", str(number), "--", "exit", "3")
            assert (code.returncode, code.stderr) == (3, "exiting with 3\n")
            ran = {n: [s for s in e.sources if isinstance(s, FakeExec)] for n, e in engines.items()}
            assert len(ran["node-2"]) == 2 and not ran["node-1"], "both commands ran on node-2"

            engines["node-2"].by_id[next(iter(engines["node-2"].by_id))].status = "exited"
            refused = _cli(a, token, tmp_path, "service", "exec", "web", str(number), "--", "echo")
            assert refused.returncode == 1 and "is not running" in refused.stderr, refused.stderr
    finally:
        a.stop()
        b.stop()

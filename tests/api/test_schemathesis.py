"""Schemathesis against a real master: every operation of /openapi.json, every check, no failure.

The master runs as a process of its own (on each store backend), with a grid that holds a node (a
fake agent), a volume, a stack and a stand-alone service; schemathesis's generated path names are
those names most of the time, so requests reach the routes' work and not only their 404s. It runs
with its own admin token and leaves the token routes by name out (``/v1/tokens/{name}``: rotating or
revoking its own token would end the run). The config it runs with (``SCHEMATHESIS_TOML``) says the
one thing the OpenAPI document cannot: which routes refuse a well-formed request by a rule of the
store with a 422 (the Kontena contract: a name taken, a volume in use, a stack's service removed
on its own, a stack document that breaks the stack file's rules; an on_node_lost a volume's scope
does not take) or a 409 (an online node declared lost without force).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.support.fake_agent import FakeNode
from tests.support.fake_engine import FakeEngine
from tests.support.processes import MasterProcess
from tests.support.waiting import wait_until

GRID, NODE, VOLUME, STACK, SERVICE = "st", "node-1", "data", "web", "app"

_REFUSED_BY_RULE = '["2xx", "401", "403", "404", "409", "422"]'

SCHEMATHESIS_TOML = f"""
[dictionaries.grids]
values = ["{GRID}"]
[dictionaries.nodes]
values = ["{NODE}"]
[dictionaries.stacks]
values = ["{STACK}", "null"]
[dictionaries.names]
values = ["{VOLUME}", "{STACK}", "{SERVICE}"]

[parameters]
"path.grid" = {{ dictionary = "grids", probability = 0.7 }}
"path.node" = {{ dictionary = "nodes", probability = 0.7 }}
"path.stack" = {{ dictionary = "stacks", probability = 0.7 }}
"path.name" = {{ dictionary = "names", probability = 0.7 }}

# creates: a name taken is a 422; a stack document has rules richer than JSON Schema can say
[[operations]]
include-method = "POST"
include-path = ["/v1/grids", "/v1/volumes/{{grid}}", "/v1/stacks/{{grid}}", "/v1/services/{{grid}}"]
checks.positive_data_acceptance.expected-statuses = {_REFUSED_BY_RULE}

[[operations]]
include-method = "PUT"
include-path = "/v1/stacks/{{grid}}/{{name}}"
checks.positive_data_acceptance.expected-statuses = {_REFUSED_BY_RULE}

# a policy a volume's scope does not take: a 422; an online node declared lost without force: a 409
[[operations]]
include-method = "PATCH"
include-path = "/v1/volumes/{{grid}}/{{name}}"
checks.positive_data_acceptance.expected-statuses = {_REFUSED_BY_RULE}

[[operations]]
include-method = "POST"
include-path = "/v1/nodes/{{grid}}/{{node}}/lost"
checks.positive_data_acceptance.expected-statuses = {_REFUSED_BY_RULE}

# a volume in use, a service of a stack (removed with its stack): a 422
[[operations]]
include-method = "DELETE"
include-path = ["/v1/volumes/{{grid}}/{{name}}", "/v1/services/{{grid}}/{{stack}}/{{name}}"]
checks.positive_data_acceptance.expected-statuses = {_REFUSED_BY_RULE}
# a followed log streams until its client leaves, and schemathesis reads every answer to its end
[[operations]]
include-path = "/v1/services/{{grid}}/{{stack}}/{{name}}/logs"
parameters = {{ "query.follow" = "false" }}
# so do followed events; a cursor must be one this master answered, a kind one it knows
[[operations]]
include-path = "/v1/grids/{{grid}}/events"
parameters = {{ "query.follow" = "false" }}
checks.positive_data_acceptance.expected-statuses = {_REFUSED_BY_RULE}
"""

MAX_EXAMPLES = 20
RUN_TIMEOUT = 240  # seconds; a run takes 15 to 40 on two loaded cores


def _seed(master: MasterProcess) -> tuple[str, str]:
    """A token for schemathesis and the grid's join token, the grid made."""
    with master.client() as client:
        made = client.post("/v1/tokens", json={"name": "schemathesis"})
        assert made.status_code == 201, made.text
        grid = client.post("/v1/grids", json={"name": GRID})
        assert grid.status_code == 201, grid.text
    return made.json()["token"], grid.json()["join_token"]


def _fill(master: MasterProcess) -> None:
    with master.client() as client:
        wait_until(
            lambda: client.get(f"/v1/nodes/{GRID}/{NODE}").status_code == 200, 10, "the fake node joined"
        )
        for path, body in [
            (f"/v1/volumes/{GRID}", {"name": VOLUME, "scope": "instance", "driver": "local"}),
            (
                f"/v1/stacks/{GRID}",
                {"stack": {"stack": STACK, "services": {STACK: {"image": "busybox:local"}}}, "deploy": False},
            ),
            (f"/v1/services/{GRID}", {"name": SERVICE, "image": "busybox:local"}),
        ]:
            made = client.post(path, json=body)
            assert made.status_code == 201, made.text


def test_schemathesis_finds_no_failure_on_any_operation(fresh_master: MasterProcess, tmp_path: Path) -> None:
    token, join_token = _seed(fresh_master)
    (tmp_path / "schemathesis.toml").write_text(SCHEMATHESIS_TOML)
    # with an engine of its own: the node answers logs (and would exec) for what it runs
    with FakeNode(fresh_master.url, join_token, NODE, report_volumes=True, engine=FakeEngine()):
        _fill(fresh_master)
        started = time.monotonic()
        run = subprocess.run(
            [
                sys.executable, "-m", "schemathesis.cli", "run", f"{fresh_master.url}/openapi.json",
                "--header", f"Authorization: Bearer {token}",
                "--checks", "all",
                "--max-examples", str(MAX_EXAMPLES),
                "--exclude-path-regex", "^/v1/tokens/",
                "--no-color",
            ],
            cwd=tmp_path,  # where it finds schemathesis.toml and keeps its files
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
        )  # fmt: skip
        took = time.monotonic() - started
    report = f"schemathesis exited with {run.returncode} after {took:.0f}s:\n{run.stdout}\n{run.stderr}"
    assert run.returncode == 0, report
    print(run.stdout[run.stdout.rfind("SUMMARY") :])  # what it tested, for -rP
    assert "Configuration:" in run.stdout and "Dictionaries:" in run.stdout, report
    with fresh_master.client() as client:
        assert client.get("/v1/ping").status_code == 200, "the master is still serving"

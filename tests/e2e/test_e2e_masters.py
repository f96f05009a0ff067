"""Two masters on one PostgreSQL behind a real HAProxy, three real engines: what a user of several
masters counts on.

- ``kill -9`` of the leader while a 20-instance deployment (an upgrade: batches of 4) rolls out,
  just after it was asked through the balancer: the agents reconnect to
  the other master within 10 s, the deployment completes through it with exactly 20 containers
  (each instance once), and ``volume show`` says the same from both masters (the killed one
  started again).
- A volume removal requested through one master deletes the Docker volume on a node whose agent
  is connected to the other master, within a few seconds.

One testbed (``testbed up --masters 2 --db postgresql://...``, a fresh database made for the
module and dropped after). Skipped, with the reason, when no PostgreSQL is configured
(MOORAGE_TEST_PG_URL; scripts/test sets it, and CI fails instead of skipping).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from moorage.client.api import MasterClient
from moorage.testbed.process import log_tail
from moorage.testbed.state import load_state
from tests.conftest import _drop_pg_database, _fresh_pg_database
from tests.e2e.conftest import Bed, running_testbed
from tests.e2e.test_e2e_stacks import containers, stack_file
from tests.e2e.test_e2e_volume_move import _redis_service, _running
from tests.e2e.test_e2e_volumes import redis_cli
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

NODES = ("node-1", "node-2", "node-3")
N = 20
RECONNECT = 10.0  # seconds for every agent to be back, through the other master
FIGURES: dict[str, str] = {}


@pytest.fixture(scope="module")
def mbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    if not os.environ.get("MOORAGE_TEST_PG_URL"):
        reason = "several masters need PostgreSQL: MOORAGE_TEST_PG_URL is not set (scripts/test sets it)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    url = _fresh_pg_database()
    try:
        with running_testbed(
            tmp_path_factory.mktemp("masters") / "config.json",
            "--nodes", "3", "--masters", "2", "--db", url, "--heartbeat-interval", "1",
        ) as bed:  # fmt: skip
            yield bed
    finally:
        _drop_pg_database(url)


def _api(bed: Bed, base: str, path: str) -> Any:
    with MasterClient(base, bed.env["MOORAGE_TOKEN"]) as client:
        return client.get(path)


def _masters(bed: Bed) -> dict[str, str]:
    """Each master's name -> its own URL (not the balancer's)."""
    state = load_state(bed.directory)
    assert state is not None
    return {str(m.name): m.url for m in state.masters}


def _leader(bed: Bed) -> str:
    answer = _api(bed, bed.env["MOORAGE_URL"], "/v1/masters")
    (leader,) = [m["name"] for m in answer["masters"] if m["leader"]]
    return str(leader)


def _nodes(bed: Bed, base: str) -> dict[str, dict[str, Any]]:
    return {n["name"]: n for n in _api(bed, base, f"/v1/nodes/{bed.env['MOORAGE_GRID']}")["nodes"]}


def _kill(bed: Bed, name: str) -> None:
    """SIGKILL the master by its recorded pid, at once (a CLI run would let the rollout go on)."""
    state = load_state(bed.directory)
    assert state is not None
    process = state.peer(name).process
    assert process is not None and process.alive()
    os.kill(process.pid, signal.SIGKILL)


def _where_agents_are(bed: Bed, seen: dict[str, dict[str, Any]]) -> str:
    """Each node as the survivor last listed it, and the end of its agent's log."""
    state = load_state(bed.directory)
    assert state is not None
    lines = []
    for node in NODES:
        shown = seen.get(node, {})
        lines.append(f"{node}: {shown.get('status')} through {shown.get('master')}")
        if shown.get("status") != "online":
            lines.append(log_tail(state.node(node).agent_log, 30))
            lines.append(log_tail(state.node(node).relay_log, 10))
    lines.append(log_tail(bed.directory / "master" / "haproxy.log", 30))
    return "\n".join(lines)


def _docker_volumes(bed: Bed, prefix: str) -> dict[str, str]:
    """Docker volumes whose name starts with ``prefix`` on every node: name -> node."""
    found: dict[str, str] = {}
    for node in NODES:
        with contextlib.suppress(docker.errors.APIError):
            for volume in bed.docker(node).volumes.list():
                if volume.name.startswith(prefix):
                    found[volume.name] = node
    return found


def _stack(folder: Path, name: str, roll: int) -> Path:
    """20 instances, each with its own volume; ``roll`` changes their config (an upgrade)."""
    return stack_file(
        folder,
        name,
        f"""
        services:
          app:
            image: busybox:local
            command: sleep 3600
            instances: {N}
            environment:
              ROLL: "{roll}"
            volumes:
              - {name}-data:/data
        volumes:
          {name}-data:
            external: true
        """,
    )


def test_a_killed_leader_leaves_its_deployment_to_the_other_master(
    mbed: Bed, tmp_path: Path, name: str
) -> None:
    urls = _masters(mbed)
    leader = _leader(mbed)
    (other,) = set(urls) - {leader}
    mbed.ok("volume", "create", "--scope", "instance", "--driver", "local", f"{name}-data")
    mbed.ok("stack", "install", str(_stack(tmp_path, name, roll=1)))
    service_id = f"{mbed.env['MOORAGE_GRID']}/{name}/app"
    old = {c["hash"] for c in containers(mbed, service_id, NODES).values()}
    # the upgrade replaces the 20 in batches of 4, each waited for: the kill lands mid-rollout
    said = mbed.ok("stack", "upgrade", name, str(_stack(tmp_path, name, roll=2)), "--no-wait")
    deployment = said.split("deployment ", 1)[1].split()[0]
    before = _api(mbed, urls[other], f"/v1/deployments/{deployment}")["state"]
    _kill(mbed, leader)
    killed = time.monotonic()
    assert before == "running", f"the deployment was {before} before the kill: nothing to take over"

    seen: dict[str, dict[str, Any]] = {}

    def all_back() -> bool:
        seen.update(_nodes(mbed, urls[other]))
        return all(seen[n]["status"] == "online" and seen[n]["master"] == other for n in NODES)

    try:
        wait_until(all_back, RECONNECT, f"every agent online through {other} within {RECONNECT:g} s")
    except AssertionError as err:  # say where each node was and what its agent said
        raise AssertionError(f"{err}\n{_where_agents_are(mbed, seen)}") from None
    reconnected = time.monotonic() - killed

    def finished() -> str | None:
        state = _api(mbed, urls[other], f"/v1/deployments/{deployment}")["state"]
        return None if state == "running" else str(state)

    state = wait_until(finished, 120, "the deployment to finish through the other master")
    done = time.monotonic() - killed
    view = _api(mbed, urls[other], f"/v1/deployments/{deployment}")
    assert state == "success", view["message"]
    found = containers(mbed, service_id, NODES)
    assert sorted(found) == sorted(f"{name}.app-{n}" for n in range(1, N + 1)), "exactly one container each"
    assert all(c["status"] == "running" for c in found.values())
    assert not {c["hash"] for c in found.values()} & old, "every instance on the new config"
    assert _api(mbed, urls[other], "/v1/masters")["leader"] is not None
    FIGURES["leader killed mid-deploy"] = (
        f"agents back through {other} in {reconnected:.1f} s, deployment done {done:.1f} s after the kill"
    )

    mbed.ok("testbed", "master", "start", leader, "--dir", str(mbed.directory))
    shown = {
        master: mbed.ok("--url", url, "volume", "show", f"{name}-data", "--json")
        for master, url in urls.items()
    }
    assert shown[leader] == shown[other]
    assert len(json.loads(shown[other])["instances"]) == N
    mbed.ok("stack", "rm", "--force", name)
    mbed.ok("volume", "rm", "--force", f"{name}-data")


def test_a_volume_removed_through_one_master_goes_from_a_node_of_the_other(
    mbed: Bed, tmp_path: Path, name: str
) -> None:
    urls = _masters(mbed)
    for master in urls:  # after the test above one may be stopped; start is a no-op otherwise
        mbed.ok("testbed", "master", "start", master, "--dir", str(mbed.directory))
    mbed.ok("volume", "create", "--scope", "instance", "--driver", "local", f"{name}-data")
    path = stack_file(
        tmp_path,
        name,
        f"""
        services:
          app:
            image: busybox:local
            command: sleep 3600
            instances: 3
            volumes:
              - {name}-data:/data
        volumes:
          {name}-data:
            external: true
        """,
    )
    mbed.ok("stack", "install", str(path))
    homes = _docker_volumes(mbed, f"{name}.app.{name}-data-")
    assert len(homes) == 3, homes
    listed = _nodes(mbed, mbed.env["MOORAGE_URL"])
    held = {n: listed[n]["master"] for n in NODES}
    # a master that no agent is connected to asks; the volume of a node held by another goes
    (asking,) = [m for m in urls if m not in held.values()] or [sorted(urls)[0]]
    far = {volume: node for volume, node in homes.items() if held[node] != asking}
    assert far, f"no volume on a node of another master than {asking}: {held}"
    mbed.ok("--url", urls[asking], "stack", "rm", "--force", name)
    asked = time.monotonic()
    mbed.ok("--url", urls[asking], "volume", "rm", "--force", f"{name}-data")
    wait_until(
        lambda: not (set(far) & set(_docker_volumes(mbed, f"{name}.app.{name}-data-"))),
        10,
        f"the Docker volumes {sorted(far)} to be removed from nodes held by another master than {asking}",
    )
    FIGURES["volume removal across masters"] = (
        f"through {asking}, gone from {sorted({far[v] for v in far})} "
        f"(held by {sorted({held[far[v]] for v in far})}) {time.monotonic() - asked:.1f} s later"
    )


def test_a_move_and_a_backup_through_a_master_that_holds_neither_agent(
    mbed: Bed, tmp_path: Path, name: str
) -> None:
    """The balancer may hand ``volume move`` and ``volume backup create`` to any master: asked
    through one that holds neither agent (when there is one), the data goes over links to the
    master that holds them (master/agent_links.py); redis runs on the target with its keys, and
    the backup is listed with the node that took it."""
    urls = _masters(mbed)
    for master in urls:
        mbed.ok("testbed", "master", "start", master, "--dir", str(mbed.directory))
    volume, service_id = f"{name}-data", f"{mbed.env['MOORAGE_GRID']}/null/{name}"
    _redis_service(mbed, name, volume)
    first = _running(mbed, service_id)
    for i in range(20):
        assert redis_cli(first["container"], "set", f"key{i}", f"value{i}") == "OK"
    home = first["node"]
    held = {n: s["master"] for n, s in _nodes(mbed, mbed.env["MOORAGE_URL"]).items()}
    asking = next((m for m in sorted(urls) if m not in held.values()), None)
    asking = asking or next(m for m in sorted(urls) if m != held[home])  # else: not the source's master
    others = [n for n in NODES if n != home]
    target = next((n for n in others if held[n] != asking), others[0])
    (instance,) = json.loads(mbed.ok("volume", "show", volume, "--json"))["instances"]

    started = time.monotonic()
    moved = mbed.ok(
        "--url", urls[asking], "volume", "move", volume, instance["name"], "--to", target, timeout=300
    )
    took = time.monotonic() - started
    assert f"Moved {instance['name']} to {target}" in moved, moved
    now = _running(mbed, service_id)
    assert now["node"] == target
    assert wait_until(lambda: redis_cli(now["container"], "dbsize") == "20", 30, "redis to load its keys")
    assert not containers(mbed, service_id, (home,)), "no container of it left on the source"

    password = tmp_path / "password"
    password.write_text("links-" + name + "\n")
    repository = tmp_path / "repo"
    mbed.ok(
        "--url", urls[asking], "grid", "backup-repo", "set", str(repository), "--password-file", str(password)
    )
    mbed.ok("--url", urls[asking], "volume", "backup", "create", volume, timeout=300)
    (backup,) = json.loads(mbed.ok("volume", "backup", "ls", volume, "--json"))
    assert (backup["node"], backup["docker_volume"]) == (target, instance["name"]), backup
    FIGURES["move across masters"] = (
        f"through {asking} ({'holds neither' if asking not in held.values() else 'holds the target'}): "
        f"{home} (held by {held[home]}) -> {target} (held by {held[target]}) in {took:.1f} s; backup taken there"
    )
    mbed.ok("service", "rm", "--force", name)
    mbed.ok("volume", "rm", "--force", volume)

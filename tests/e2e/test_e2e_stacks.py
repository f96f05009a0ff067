"""Issue 3 as a user sees it: stacks and services deployed on real engines."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.e2e.conftest import Bed
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e


def stack_file(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.yml"
    path.write_text(f"stack: test/{name}\nversion: 0.0.1\n" + textwrap.dedent(body))
    return path


def containers(
    bed: Bed, service_id: str, nodes: tuple[str, ...] = ("node-1", "node-2", "node-3")
) -> dict[str, dict]:
    """Moorage containers of a service on these nodes: name -> {node, hash, status, id}."""
    found = {}
    for node in nodes:
        for c in bed.docker(node).containers.list(
            all=True, filters={"label": f"io.moorage.service-id={service_id}"}
        ):
            found[c.name] = {
                "node": node,
                "hash": c.labels["io.moorage.config-hash"],
                "status": c.status,
                "id": c.id,
                "container": c,
            }
    return found


def test_seed_redis_stack_answers_pong(bed: Bed, tmp_path: Path, name: str) -> None:
    path = stack_file(
        tmp_path,
        name,
        """
        description: Just a simple Redis stack
        services:
          redis:
            image: redis:local
            command: redis-server --appendonly yes
        """,
    )
    out = bed.ok("stack", "install", str(path))
    assert f"Deployed stack {name}: 1 instance(s) running" in out
    found = containers(bed, f"testbed/{name}/redis")
    assert list(found) == [f"{name}.redis-1"]
    code, output = found[f"{name}.redis-1"]["container"].exec_run("redis-cli ping")
    assert (code, output.strip()) == (0, b"PONG")
    listing = bed.ok("stack", "ls")
    assert any(line.split()[:4] == [name, "1", "1", "1/1"] for line in listing.splitlines())
    shown = bed.ok("stack", "show", name)
    row = next(line.split() for line in shown.splitlines() if line.startswith(f"{name}/redis-1"))
    assert row[1:4] == [found[f"{name}.redis-1"]["node"], "running", f"{name}.redis-1"]
    bed.ok("stack", "rm", "--force", name)
    wait_until(lambda: not containers(bed, f"testbed/{name}/redis"), 30, "the stack's containers to go")


def test_ha_spreads_over_zones_and_affinity_pins(bed: Bed, tmp_path: Path, name: str) -> None:
    path = stack_file(
        tmp_path,
        name,
        """
        services:
          web:
            image: busybox:local
            command: sleep 3600
            instances: 3
            deploy:
              strategy: ha
          pinned:
            image: busybox:local
            command: sleep 3600
            instances: 2
            affinity:
              - label==zone=b
        """,
    )
    bed.ok("stack", "install", str(path))
    web = containers(bed, f"testbed/{name}/web")
    assert sorted(c["node"] for c in web.values()) == ["node-1", "node-2", "node-3"]
    pinned = containers(bed, f"testbed/{name}/pinned")
    assert [c["node"] for c in pinned.values()] == ["node-2", "node-2"]
    bed.ok("stack", "rm", "--force", name)


def test_impossible_affinity_fails_with_the_counted_reason(bed: Bed, name: str) -> None:
    bed.ok("service", "create", "--affinity", "label==zone=d", name, "busybox:local", "--cmd", "sleep 3600")
    result = bed.fails("service", "deploy", name)
    assert f"{name}-1: 0/3 nodes available: 3 node(s) didn't match affinity label==zone=d" in result.text
    bed.ok("service", "rm", "--force", name)


def test_upgrade_replaces_containers_and_scale_adds_and_removes_exactly(
    bed: Bed, tmp_path: Path, name: str
) -> None:
    body = """
        services:
          app:
            image: busybox:local
            command: {command}
            instances: 2
        """
    path = stack_file(tmp_path, name, body.format(command="sleep 3600"))
    bed.ok("stack", "install", str(path))
    service = f"testbed/{name}/app"
    before = containers(bed, service)
    assert len(before) == 2
    stack_file(tmp_path, name, body.format(command="sleep 7200"))
    bed.ok("stack", "upgrade", name, str(path))
    after = containers(bed, service)
    assert set(after) == set(before)
    for cname in after:
        assert after[cname]["hash"] != before[cname]["hash"]
        assert after[cname]["id"] != before[cname]["id"]
        assert after[cname]["container"].attrs["Config"]["Cmd"] == ["sleep", "7200"]
    assert json.loads(bed.ok("stack", "show", name, "--json"))["revision"] == 2

    bed.ok("service", "scale", f"{name}/app", "4")
    scaled = containers(bed, service)
    assert sorted(scaled) == [f"{name}.app-{n}" for n in (1, 2, 3, 4)]
    assert {k: v["id"] for k, v in scaled.items() if k in after} == {k: v["id"] for k, v in after.items()}
    bed.ok("service", "scale", f"{name}/app", "1")
    wait_until(lambda: sorted(containers(bed, service)) == [f"{name}.app-1"], 30, "scale down to app-1")
    assert containers(bed, service)[f"{name}.app-1"]["id"] == scaled[f"{name}.app-1"]["id"]
    bed.ok("stack", "rm", "--force", name)
    wait_until(lambda: not containers(bed, service), 30, "the stack's containers to go")


def test_container_removed_by_hand_is_recreated(bed: Bed, name: str) -> None:
    bed.ok("service", "create", name, "busybox:local", "--cmd", "sleep 3600")
    bed.ok("service", "deploy", name)
    service = f"testbed/null/{name}"
    (first,) = containers(bed, service).values()
    first["container"].remove(force=True)
    again = wait_until(
        lambda: (
            (c := containers(bed, service).get(f"{name}-1"))
            and c["status"] == "running"
            and c["id"] != first["id"]
            and c
        ),
        30,
        "the agent to recreate the container",
    )
    assert again["node"] == first["node"]
    bed.ok("service", "rm", "--force", name)


def test_unlabelled_containers_are_never_touched(bed: Bed, name: str) -> None:
    engine = bed.docker("node-1")
    mine = engine.containers.run("busybox:local", "sleep 3600", name=f"{name}-1", detach=True)
    try:
        bed.ok(
            "service", "create", "--affinity", "node==node-2", name, "busybox:local", "--cmd", "sleep 3600"
        )
        bed.ok("service", "deploy", name)
        bed.ok("service", "rm", "--force", name)
        mine.reload()
        assert mine.status == "running"
    finally:
        mine.remove(force=True)


def test_agent_stopped_during_a_deploy_converges_when_back(bed: Bed, name: str) -> None:
    bed.ok("service", "create", "--affinity", "node==node-3", name, "busybox:local", "--cmd", "sleep 3600")
    bed.ok("testbed", "agent", "stop", "node-3", "--dir", str(bed.directory))
    try:
        bed.wait_status("node-3", "offline")
        result = bed.fails("service", "deploy", name)
        assert "1 node(s) offline" in result.text
    finally:
        bed.ok("testbed", "agent", "start", "node-3", "--dir", str(bed.directory))
    bed.wait_status("node-3", "online")
    bed.ok("service", "deploy", name)
    assert containers(bed, f"testbed/null/{name}")[f"{name}-1"]["node"] == "node-3"
    bed.ok("service", "rm", "--force", name)


def test_invalid_stack_file_is_refused_with_paths(bed: Bed, tmp_path: Path, name: str) -> None:
    path = stack_file(
        tmp_path,
        name,
        """
        services:
          redis:
            image: redis:local
            volumes:
              - data:data
              - nosuch:/x
        """,
    )
    result = bed.fails("stack", "install", str(path))
    assert "services.redis.volumes[0]: volume definition not in right format: data:data" in result.err
    assert "services.redis.volumes[1]: volume 'nosuch' is not declared" in result.err
    assert name not in bed.ok("stack", "ls")


def test_a_deploy_once_the_missing_image_is_there_is_judged_by_the_new_attempt(bed: Bed, name: str) -> None:
    """Issue 11 item 12 as a new user met it: an instance failed on a missing image, the image was
    loaded, and a deploy run at once must wait for the agent's new attempt, not quote the old error."""
    image = f"{name}-late:local"
    engine = bed.docker("node-2")
    bed.ok("service", "create", "--affinity", "node==node-2", name, image, "--cmd", "sleep 3600")
    try:
        failed = bed.fails("service", "deploy", name)
        assert f"{name}-1 on node-2: " in failed.text, failed.text  # the engine could not pull it
        assert engine.images.get("busybox:local").tag(f"{name}-late", "local")
        bed.ok("service", "deploy", name)
        (found,) = containers(bed, f"testbed/null/{name}").values()
        assert (found["node"], found["status"]) == ("node-2", "running")
        (shown,) = json.loads(bed.ok("service", "show", name, "--json"))["containers"]
        assert shown["state"] == "running", shown
    finally:
        bed.ok("service", "rm", "--force", name)
        wait_until(lambda: not containers(bed, f"testbed/null/{name}"), 30, "the service's container to go")
        if engine.images.list(name=f"{name}-late"):
            engine.images.remove(image)

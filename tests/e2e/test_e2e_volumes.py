"""Issue 4 as a user sees it: managed named volumes on real engines and real volume plugins."""

from __future__ import annotations

import contextlib
import json
import textwrap
from pathlib import Path

import docker.errors
import pytest

from tests.e2e.conftest import Bed
from tests.e2e.test_e2e_stacks import containers
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

NODES = ("node-1", "node-2", "node-3")


def docker_volumes(bed: Bed, name: str) -> dict[str, dict]:
    """Docker volumes called ``name`` on every node: node -> attrs."""
    found = {}
    for node in NODES:
        with contextlib.suppress(docker.errors.NotFound):
            found[node] = bed.docker(node).volumes.get(name).attrs
    return found


def redis_cli(container, *args: str) -> str:
    code, out = container.exec_run(["redis-cli", *args])
    assert code == 0, out
    return out.decode().strip()


def write_stack(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "stack.yml"
    path.write_text(textwrap.dedent(text))
    return path


SEED = """
    stack: jussi/redis
    description: Just a simple Redis stack with volume
    version: 0.0.1
    services:
      redis:
        image: redis:local
        command: {command}
        volumes:
          - redis-data:/data
    volumes:
      redis-data:
        external: true
    """


def test_the_seed_keeps_its_data_across_upgrade_rm_and_install(bed: Bed, tmp_path: Path) -> None:
    assert (
        bed.ok("volume", "create", "--scope", "instance", "--driver", "local", "redis-data").strip()
        == "redis-data"
    )
    path = write_stack(tmp_path, SEED.format(command="redis-server --appendonly yes"))
    bed.ok("stack", "install", str(path))
    (first,) = containers(bed, "testbed/redis/redis").values()
    node = first["node"]
    mounts = first["container"].attrs["Mounts"]
    assert [(m["Type"], m["Name"], m["Destination"]) for m in mounts] == [
        ("volume", "redis.redis.redis-data-1", "/data")
    ]
    assert redis_cli(first["container"], "set", "greeting", "hello") == "OK"

    write_stack(tmp_path, SEED.format(command="redis-server --appendonly yes --maxclients 100"))
    bed.ok("stack", "upgrade", "redis", str(path))
    (upgraded,) = containers(bed, "testbed/redis/redis").values()
    assert upgraded["id"] != first["id"] and upgraded["node"] == node
    assert redis_cli(upgraded["container"], "get", "greeting") == "hello"

    bed.ok("stack", "rm", "--force", "redis")
    wait_until(lambda: not containers(bed, "testbed/redis/redis"), 30, "the stack's container to go")
    assert list(docker_volumes(bed, "redis.redis.redis-data-1")) == [node], "stack rm keeps the volume"
    bed.ok("stack", "install", str(path))
    (again,) = containers(bed, "testbed/redis/redis").values()
    assert again["node"] == node
    assert redis_cli(again["container"], "get", "greeting") == "hello"

    shown = bed.ok("volume", "show", "redis-data")
    assert shown.startswith("redis-data:\n  id: testbed/redis-data\n  created: ")
    assert "  scope: instance\n  driver: local\n  driver_opts:\n  instances:\n" in shown
    assert f"    - name: redis.redis.redis-data-1\n      node: {node}\n" in shown
    # Kontena's fields end with the services; Moorage's own (topology, on_node_lost) come after them
    assert (
        "  services:\n    - testbed/redis/redis\n  topology: node\n  on_node_lost: wait\n"
        "  backups:\n    schedule: -\n"
    ) in shown
    bed.ok("stack", "rm", "--force", "redis")
    bed.ok("volume", "rm", "--force", "redis-data")
    wait_until(
        lambda: not docker_volumes(bed, "redis.redis.redis-data-1"), 30, "the Docker volume to be removed"
    )


def test_three_instances_get_three_volumes_that_stay_with_them(bed: Bed, tmp_path: Path, name: str) -> None:
    bed.ok("volume", "create", "--scope", "instance", "--driver", "local", f"{name}-data")
    path = write_stack(
        tmp_path,
        f"""
        stack: {name}
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
    bed.ok("stack", "install", str(path))
    first = containers(bed, f"testbed/{name}/app")
    homes = {}
    for n in (1, 2, 3):
        volume = f"{name}.app.{name}-data-{n}"
        (node,) = docker_volumes(bed, volume)
        homes[n] = node
        container = first[f"{name}.app-{n}"]
        assert container["node"] == node
        assert [m["Name"] for m in container["container"].attrs["Mounts"]] == [volume]
        container["container"].exec_run(["sh", "-c", f"echo {n} > /data/who"])
    assert sorted(homes.values()) == list(NODES)
    _events_show_the_volume_instances_made(bed, name, homes)
    bed.ok("stack", "deploy", name)
    bed.ok("service", "scale", f"{name}/app", "3")
    again = containers(bed, f"testbed/{name}/app")
    for n in (1, 2, 3):
        container = again[f"{name}.app-{n}"]
        assert container["node"] == homes[n]
        assert container["container"].exec_run(["cat", "/data/who"]).output.decode().strip() == str(n)
    listed = json.loads(bed.ok("volume", "show", f"{name}-data", "--json"))
    assert sorted((i["name"], i["node"], i["zone"]) for i in listed["instances"]) == [
        (f"{name}.app.{name}-data-{n}", homes[n], {"node-1": "a", "node-2": "b", "node-3": "c"}[homes[n]])
        for n in (1, 2, 3)
    ]
    bed.ok("stack", "rm", "--force", name)
    bed.ok("volume", "rm", "--force", f"{name}-data")


def _events(bed: Bed, *args: str) -> list[dict]:
    return [json.loads(line) for line in bed.ok("events", "--json", *args).splitlines()]


def _events_show_the_volume_instances_made(bed: Bed, name: str, homes: dict[int, str]) -> None:
    """``moorage events --volume V``: the volume's creation by the admin token, then each volume
    instance recorded on its node and made there by its engine (the agent's report)."""
    volume = f"{name}-data"
    made = {f"{name}.app.{volume}-{n}": node for n, node in homes.items()}

    def present() -> list[dict]:
        found = _events(bed, "--volume", volume)
        reported = {e["volume_instance"] for e in found if e["kind"] == "volume_instance.state"}
        return found if len(reported) == 3 else []

    found = wait_until(present, 30, "the agents' reports of the Docker volumes in the events", interval=0.5)
    assert (found[0]["kind"], found[0]["actor"], found[0]["volume"]) == ("volume.created", "admin", volume)
    created = [e for e in found if e["kind"] == "volume_instance.created"]
    assert sorted((e["message"].split()[2], e["node"]) for e in created) == sorted(made.items())
    states = [e for e in found if e["kind"] == "volume_instance.state"]
    assert all(e["message"].endswith("pending -> present") for e in states), states
    assert {e["volume_instance"] for e in states} == {e["volume_instance"] for e in created}
    assert all(e["time"] and e["cursor"] for e in found)
    lines = bed.ok("events", "--volume", volume).splitlines()  # for people: a line each
    assert any("volume_instance.created" in line and f"{name}.app.{volume}-1" in line for line in lines)
    # the instances' transitions, by stack and by node
    running = [e for e in _events(bed, "--stack", name, "--kind", "instance") if "-> running" in e["message"]]
    assert sorted(e["instance"] for e in running) == [1, 2, 3]
    on_node = _events(bed, "--node", homes[1], "--kind", "volume_instance")
    assert {e["node"] for e in on_node} == {homes[1]}


def test_services_land_only_where_their_volume_driver_is(bed: Bed, name: str) -> None:
    bed.ok("volume", "create", "--scope", "instance", "--driver", "dirvol", f"{name}-dv")
    bed.ok(
        "service",
        "create",
        "--instances",
        "4",
        "-v",
        f"{name}-dv:/data",
        name,
        "busybox:local",
        "--cmd",
        "sleep 3600",
    )
    bed.ok("service", "deploy", name)
    placed = containers(bed, f"testbed/null/{name}")
    assert len(placed) == 4
    assert {c["node"] for c in placed.values()} == {"node-1", "node-2"}
    for c in placed.values():
        (mount,) = c["container"].attrs["Mounts"]
        assert mount["Driver"] == "dirvol"
    bed.ok("service", "rm", "--force", name)
    bed.ok("volume", "rm", "--force", f"{name}-dv")

    bed.ok("volume", "create", "--scope", "grid", "--driver", "nosuchdriver", f"{name}-none")
    bed.ok(
        "service", "create", "-v", f"{name}-none:/data", f"{name}-x", "busybox:local", "--cmd", "sleep 3600"
    )
    result = bed.fails("service", "deploy", f"{name}-x")
    assert "Did not find any nodes with required volume drivers: [nosuchdriver]" in result.err
    assert "3 node(s) missing volume driver(s) [nosuchdriver]" in result.err
    assert not containers(bed, f"testbed/null/{name}-x")
    bed.ok("service", "rm", "--force", f"{name}-x")
    bed.ok("volume", "rm", "--force", f"{name}-none")


def _single(bed: Bed, service_id: str) -> dict:
    (only,) = containers(bed, service_id).values()
    return only


def test_instance_waits_for_the_node_holding_its_volume(bed: Bed, name: str) -> None:
    bed.ok("volume", "create", "--scope", "instance", "--driver", "local", f"{name}-data")
    bed.ok(
        "service",
        "create",
        "-v",
        f"{name}-data:/data",
        name,
        "redis:local",
        "--cmd",
        "redis-server --appendonly yes",
    )
    bed.ok("service", "deploy", name)
    first = _single(bed, f"testbed/null/{name}")
    node = first["node"]
    assert redis_cli(first["container"], "set", "k", "v") == "OK"
    bed.ok("testbed", "node", "stop", node, "--dir", str(bed.directory))
    try:
        bed.wait_status(node, "offline")
        result = bed.fails("service", "deploy", name)
        volume = f"{name}.{name}-data-1"
        assert f"volume instance {volume} lives on node {node}, which is offline" in result.err
        service = json.loads(bed.ok("service", "show", name, "--json"))
        (instance,) = service["containers"]
        assert instance["state"] == "pending" and instance["node"] == node
        assert f"'moorage node declare-lost {node}'" in instance["reason"]
        others = tuple(n for n in NODES if n != node)
        assert not containers(bed, f"testbed/null/{name}", others), (
            "never started elsewhere on an empty volume"
        )
    finally:
        bed.ok("testbed", "node", "start", node, "--dir", str(bed.directory))
    back = wait_until(
        lambda: (c := _single(bed, f"testbed/null/{name}")) and c["status"] == "running" and c,
        60,
        "the instance running again on its node",
    )
    assert back["node"] == node
    assert wait_until(lambda: redis_cli(back["container"], "get", "k") == "v", 30, "redis to load its data")
    bed.ok("service", "rm", "--force", name)
    bed.ok("volume", "rm", "--force", f"{name}-data")


def test_shared_global_driver_lets_the_instance_move_with_its_data(bed: Bed, name: str) -> None:
    bed.ok("volume", "create", "--scope", "instance", "--driver", "shared", f"{name}-data")
    bed.ok("service", "create", "-v", f"{name}-data:/data", name, "busybox:local", "--cmd", "sleep 3600")
    bed.ok("service", "deploy", name)
    first = _single(bed, f"testbed/null/{name}")
    first["container"].exec_run(["sh", "-c", "echo kept > /data/file"])
    bed.ok("testbed", "node", "stop", first["node"], "--dir", str(bed.directory))
    try:
        bed.wait_status(first["node"], "offline")
        bed.ok("service", "deploy", name)
        others = tuple(n for n in NODES if n != first["node"])
        (moved,) = containers(bed, f"testbed/null/{name}", others).values()
        assert moved["status"] == "running"
        assert moved["container"].exec_run(["cat", "/data/file"]).output.decode().strip() == "kept"
        shown = json.loads(bed.ok("volume", "show", f"{name}-data", "--json"))
        assert [i["node"] for i in shown["instances"]] == [moved["node"]]
    finally:
        bed.ok("testbed", "node", "start", first["node"], "--dir", str(bed.directory))
    bed.ok("service", "rm", "--force", name)
    bed.ok("volume", "rm", "--force", f"{name}-data")


def test_removal_is_protected_and_never_touches_volumes_moorage_did_not_create(bed: Bed, name: str) -> None:
    volume = f"{name}-data"
    bed.ok("volume", "create", "--scope", "instance", "--driver", "local", volume)
    adopted = f"{name}.{volume}-1"
    bed.docker("node-1").volumes.create(adopted, driver="local")  # made by hand: no Moorage labels
    bed.ok(
        "service",
        "create",
        "--instances",
        "2",
        "--affinity",
        "node==node-1",
        "-v",
        f"{volume}:/data",
        name,
        "busybox:local",
        "--cmd",
        "sleep 3600",
    )
    bed.ok("service", "deploy", name)
    ours = f"{name}.{volume}-2"
    assert docker_volumes(bed, ours)["node-1"]["Labels"]["io.moorage.volume-instance-id"]
    assert not docker_volumes(bed, adopted)["node-1"]["Labels"]

    refused = bed.fails("volume", "rm", "--force", volume)
    assert "still in use" in refused.err and f"testbed/null/{name}" in refused.err
    not_forced = bed.run("volume", "rm", volume, input="")
    assert not_forced.code == 1 and "Command requires --force" in not_forced.err

    bed.ok("service", "rm", "--force", name)
    assert set(docker_volumes(bed, ours)) == {"node-1"}, "service rm keeps volumes"
    bed.ok("volume", "rm", "--force", volume)
    wait_until(lambda: not docker_volumes(bed, ours), 30, "Moorage's Docker volume to be removed")
    assert set(docker_volumes(bed, adopted)) == {"node-1"}, "the volume made by hand must survive"
    bed.docker("node-1").volumes.get(adopted).remove()


def test_same_named_volume_of_another_driver_fails_the_instance(bed: Bed, name: str) -> None:
    volume = f"{name}-data"
    bed.ok("volume", "create", "--scope", "grid", "--driver", "local", volume)
    bed.docker("node-2").volumes.create(volume, driver="shared")
    try:
        bed.ok(
            "service",
            "create",
            "--affinity",
            "node==node-2",
            "-v",
            f"{volume}:/data",
            name,
            "busybox:local",
            "--cmd",
            "sleep 3600",
        )
        result = bed.fails("service", "deploy", name)
        assert "Volume driver not as expected. Expected local, existing volume has shared" in result.err
        assert not containers(bed, f"testbed/null/{name}")
    finally:
        bed.run("service", "rm", "--force", name)
        bed.run("volume", "rm", "--force", volume)
        bed.docker("node-2").volumes.get(volume).remove()


def test_volume_deleted_by_hand_is_reported_and_recreated_on_the_next_deploy(bed: Bed, name: str) -> None:
    volume = f"{name}-data"
    bed.ok("volume", "create", "--scope", "instance", "--driver", "local", volume)
    bed.ok(
        "service",
        "create",
        "--affinity",
        "node==node-3",
        "-v",
        f"{volume}:/data",
        name,
        "busybox:local",
        "--cmd",
        "sleep 3600",
    )
    bed.ok("service", "deploy", name)
    bed.ok("service", "scale", name, "0")
    docker_name = f"{name}.{volume}-1"
    wait_until(lambda: not containers(bed, f"testbed/null/{name}"), 30, "the container to go")
    bed.docker("node-3").volumes.get(docker_name).remove()
    wait_until(
        lambda: json.loads(bed.ok("volume", "show", volume, "--json"))["instances"][0]["state"] == "missing",
        30,
        "the agent to report the volume missing",
    )
    assert "state: missing" in bed.ok("volume", "show", volume)
    bed.ok("service", "scale", name, "1")
    assert set(docker_volumes(bed, docker_name)) == {"node-3"}
    assert json.loads(bed.ok("volume", "show", volume, "--json"))["instances"][0]["state"] == "present"
    bed.ok("service", "rm", "--force", name)
    bed.ok("volume", "rm", "--force", volume)


def test_volume_cli_contract(bed: Bed, name: str) -> None:
    assert "Missing option '--scope'" in bed.fails("volume", "create", "--driver", "local", name).err
    assert "Missing option '--driver'" in bed.fails("volume", "create", "--scope", "grid", name).err
    assert (
        "Unknown scope 'x', must be one of grid, stack, instance"
        in bed.fails("volume", "create", "--scope", "x", "--driver", "local", name).err
    )
    opts = ("--driver-opt", "o=addr=1.2.3.4,rw", "--driver-opt", "com.example.size=1g")
    bed.ok("volume", "create", "--scope", "stack", "--driver", "local", *opts, name)
    assert (
        "Volume with given name already exists"
        in bed.fails("volume", "create", "--scope", "stack", "--driver", "local", name).err
    )
    shown = json.loads(bed.ok("volume", "show", name, "--json"))
    assert shown["driver_opts"] == {"o": "addr=1.2.3.4,rw", "com.example.size": "1g"}
    lines = bed.ok("volume", "ls").splitlines()
    assert lines[0].split() == ["NAME", "SCOPE", "DRIVER", "CREATED"]
    assert any(line.split()[:3] == [name, "stack", "local"] for line in lines[1:])
    assert name in bed.ok("volume", "ls", "-q").splitlines()
    assert "Volume nosuch not found" in bed.fails("volume", "show", "nosuch").err
    bed.ok("volume", "rm", "--force", name)
    assert name not in bed.ok("volume", "ls", "-q").splitlines()


def test_a_volume_created_again_never_gets_the_old_data_still_being_removed(bed: Bed, name: str) -> None:
    volume = f"{name}-data"  # grid scope: the Docker volume is called just that, on every node

    def service(service_name: str, *extra: str) -> None:
        bed.ok(
            "service",
            "create",
            *extra,
            "-v",
            f"{volume}:/data",
            service_name,
            "busybox:local",
            "--cmd",
            "sleep 3600",
        )

    bed.ok("volume", "create", "--scope", "grid", "--driver", "local", volume)
    service(name, "--affinity", "node==node-2")
    bed.ok("service", "deploy", name)
    code, out = _single(bed, f"testbed/null/{name}")["container"].exec_run(
        ["sh", "-c", "echo old > /data/file"]
    )
    assert code == 0, out
    bed.ok("service", "rm", "--force", name)
    # Someone's own container still mounts it: the agent cannot delete the Docker volume yet.
    holder = bed.docker("node-2").containers.run(
        "busybox:local", "sleep 3600", volumes={volume: {"bind": "/held"}}, detach=True
    )
    try:
        bed.ok("volume", "rm", "--force", volume)
        bed.ok("volume", "create", "--scope", "grid", "--driver", "local", volume)
        service(f"{name}-any")
        bed.ok("service", "deploy", f"{name}-any")
        fresh = _single(bed, f"testbed/null/{name}-any")
        assert fresh["node"] != "node-2", "not where the removed volume's data still is"
        code, out = fresh["container"].exec_run(["ls", "-A", "/data"])
        assert code == 0 and out.decode().strip() == "", "the new volume starts empty"

        service(f"{name}-pinned", "--affinity", "node==node-2")
        waiting = bed.fails("service", "deploy", f"{name}-pinned")
        assert f"still removing the Docker volume {volume} of a removed volume" in waiting.err
        assert not containers(bed, f"testbed/null/{name}-pinned")
        assert "old" in holder.exec_run(["cat", "/held/file"]).output.decode(), "the old data is untouched"
    finally:
        holder.remove(force=True)
    # Once nothing mounts it the agent deletes the old Docker volume; the waiting instance is
    # placed then, without another deploy, on a fresh volume.
    pinned = wait_until(
        lambda: next(
            (c for c in containers(bed, f"testbed/null/{name}-pinned").values() if c["status"] == "running"),
            None,
        ),
        60,
        "the waiting instance to start once the old volume is gone",
    )
    assert pinned["node"] == "node-2"
    code, out = pinned["container"].exec_run(["ls", "-A", "/data"])
    assert code == 0 and out.decode().strip() == ""
    for leftover in (f"{name}-any", f"{name}-pinned"):
        bed.ok("service", "rm", "--force", leftover)
    bed.ok("volume", "rm", "--force", volume)

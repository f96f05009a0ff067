"""Issue 15 as a user sees it on real engines: a stack file's own volumes (one file installed under
two names, data kept across ``stack rm`` and install, ``stack rm --volumes``), an external volume
that is not what the stack expects, unused volume instances after a scale-down (used again when
scaling up, removed only by ``volume prune``), and a Docker volume re-created by hand with other
options shown as drifted."""

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


def stack_file(
    tmp_path: Path, name: str, instances: int = 1, volumes: str = "data: {scope: instance, driver: local}"
) -> Path:
    path = tmp_path / f"{name}.yml"
    path.write_text(
        textwrap.dedent(
            f"""
            stack: test/{name}
            services:
              app:
                image: busybox:local
                command: sleep 3600
                instances: {instances}
                volumes: [data:/data]
            volumes:
            """
        )
        + textwrap.indent(volumes, "  ")
        + "\n"
    )
    return path


def docker_volume(bed: Bed, name: str) -> tuple[str, dict] | None:
    """The node holding the Docker volume ``name`` and its attributes; None when no node has it."""
    for node in NODES:
        with contextlib.suppress(docker.errors.NotFound):
            return node, bed.docker(node).volumes.get(name).attrs
    return None


def volume(bed: Bed, name: str) -> dict:
    return json.loads(bed.ok("volume", "show", name, "--json"))


def run_in(bed: Bed, stack: str, number: int, *command: str) -> str:
    found = containers(bed, f"testbed/{stack}/app")[f"{stack}.app-{number}"]
    code, out = found["container"].exec_run(list(command))
    assert code == 0, out
    return out.decode().strip()


def long_row(bed: Bed, name: str) -> dict[str, str]:
    lines = bed.ok("volume", "ls", "--long").splitlines()
    header = lines[0].split()
    row = next(line.split() for line in lines[1:] if line.split()[0] == name)
    return dict(zip(header, row, strict=True))


def test_one_file_installed_twice_keeps_each_stacks_data(bed: Bed, tmp_path: Path, name: str) -> None:
    path = stack_file(tmp_path, name)
    a, b = f"{name}a", f"{name}b"
    for stack in (a, b):
        bed.ok("stack", "install", "--name", stack, str(path))
        run_in(bed, stack, 1, "sh", "-c", f"echo {stack} > /data/owner")
    for stack in (a, b):
        shown = volume(bed, f"{stack}_data")
        assert (shown["stack"], shown["scope"], shown["driver"]) == (f"testbed/{stack}", "instance", "local")
        assert [i["name"] for i in shown["instances"]] == [f"{stack}.app.{stack}_data-1"]
        assert long_row(bed, f"{stack}_data")["STACK"] == f"testbed/{stack}"
    homes = {stack: docker_volume(bed, f"{stack}.app.{stack}_data-1") for stack in (a, b)}
    assert all(homes.values())

    for stack in (a, b):  # removed and installed again: the same Docker volume, the data in it
        bed.ok("stack", "rm", "--force", stack)
        wait_until(lambda s=stack: not containers(bed, f"testbed/{s}/app"), 60, f"{stack}'s containers to go")
        (instance,) = volume(bed, f"{stack}_data")["instances"]
        assert instance["state"] == "unused" and instance["unused_since"]
        bed.ok("stack", "install", "--name", stack, str(path))
        assert run_in(bed, stack, 1, "cat", "/data/owner") == stack
        assert docker_volume(bed, f"{stack}.app.{stack}_data-1") == homes[stack]

    out = bed.ok("stack", "rm", "--volumes", "--force", a)
    assert f"Removed stack {a} and its volumes: {a}_data" in out
    wait_until(lambda: docker_volume(bed, f"{a}.app.{a}_data-1") is None, 60, f"{a}'s Docker volume to go")
    assert f"{a}_data" not in bed.ok("volume", "ls", "-q").split()
    assert docker_volume(bed, f"{b}.app.{b}_data-1") is not None
    assert run_in(bed, b, 1, "cat", "/data/owner") == b

    # b's Docker volume, re-created by hand with other options and the same labels, is drifted
    bed.ok("stack", "rm", "--force", b)
    wait_until(lambda: not containers(bed, f"testbed/{b}/app"), 60, f"{b}'s containers to go")
    found = docker_volume(bed, f"{b}.app.{b}_data-1")
    assert found is not None
    node, attrs = found
    engine = bed.docker(node)
    engine.volumes.get(attrs["Name"]).remove()
    engine.volumes.create(
        attrs["Name"],
        driver="local",
        driver_opts={"type": "tmpfs", "device": "tmpfs"},
        labels=attrs["Labels"],
    )

    def drifted() -> dict | None:
        (instance,) = volume(bed, f"{b}_data")["instances"]
        return instance["drift"] or None

    assert wait_until(drifted, 30, "the drift to show") == {
        "driver_opts": {"definition": {}, "engine": {"type": "tmpfs", "device": "tmpfs"}}
    }
    text = bed.ok("volume", "show", f"{b}_data")
    assert "drifted: driver_opts on the node is device=tmpfs,type=tmpfs, the definition says {}" in text
    assert long_row(bed, f"{b}_data")["DRIFTED"] == "1"
    bed.ok("stack", "rm", "--volumes", "--force", b)
    wait_until(lambda: docker_volume(bed, f"{b}.app.{b}_data-1") is None, 60, f"{b}'s Docker volume to go")


def test_an_external_volume_of_the_wrong_scope_fails_the_install(bed: Bed, tmp_path: Path, name: str) -> None:
    bed.ok("volume", "create", "--scope", "grid", "--driver", "local", f"{name}-ext")
    path = stack_file(tmp_path, name, volumes=f"data: {{external: {{name: {name}-ext, scope: instance}}}}")
    before = bed.ok("volume", "ls", "--json")
    failed = bed.fails("stack", "install", str(path))
    assert (
        f"External volume {name}-ext has scope grid, but this stack expects scope instance; use a volume "
        "with scope instance, or change the stack file" in failed.err
    )
    assert name not in bed.ok("stack", "ls")
    assert bed.ok("volume", "ls", "--json") == before
    bed.ok("volume", "rm", "--force", f"{name}-ext")


def test_a_scale_down_leaves_an_unused_volume_instance_that_only_prune_removes(
    bed: Bed, tmp_path: Path, name: str
) -> None:
    bed.ok("stack", "install", str(stack_file(tmp_path, name, instances=3)))
    third = f"{name}.app.{name}_data-3"
    run_in(bed, name, 3, "sh", "-c", "echo three > /data/kept")
    home = docker_volume(bed, third)
    assert home is not None

    def instances() -> dict[str, dict]:
        return {i["name"]: i for i in volume(bed, f"{name}_data")["instances"]}

    bed.ok("service", "scale", f"{name}/app", "2")
    assert instances()[third]["state"] == "unused" and instances()[third]["unused_since"]
    assert {i["state"] for n, i in instances().items() if n != third} == {"present"}
    text = bed.ok("volume", "show", f"{name}_data")
    assert f"state: unused (since {instances()[third]['unused_since']})" in text
    assert long_row(bed, f"{name}_data")["UNUSED"] == "1"
    assert docker_volume(bed, third) == home  # nothing removed by the scale-down

    bed.ok("service", "scale", f"{name}/app", "3")
    assert run_in(bed, name, 3, "cat", "/data/kept") == "three"
    assert docker_volume(bed, third) == home
    assert instances()[third]["state"] == "present"

    bed.ok("service", "scale", f"{name}/app", "2")
    dry = bed.ok("volume", "prune", "--dry-run", f"{name}_data")
    assert dry.startswith(f"Would remove {third} on {home[0]} ") and len(dry.splitlines()) == 1
    assert "No unused volume instances" in bed.ok("volume", "prune", "--older-than", "7d", f"{name}_data")
    not_forced = bed.run("volume", "prune", f"{name}_data", input="")
    assert not_forced.code == 1 and "Command requires --force" in not_forced.err
    out = bed.ok("volume", "prune", "--force", f"{name}_data")
    assert out.startswith(f"Removed {third} on {home[0]} ") and len(out.splitlines()) == 1
    wait_until(lambda: docker_volume(bed, third) is None, 60, "the pruned Docker volume to go")
    assert sorted(instances()) == [f"{name}.app.{name}_data-1", f"{name}.app.{name}_data-2"]
    for number in (1, 2):
        assert docker_volume(bed, f"{name}.app.{name}_data-{number}") is not None
    bed.ok("stack", "rm", "--volumes", "--force", name)

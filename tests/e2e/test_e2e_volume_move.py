"""Volume moves on real engines (issue 12, items 2 and 4), as a user runs them: a redis instance's
appendonly data moved to another node keeps its keys; a data tree (about 1,000 files, a hardlink
pair, a symlink, a file of uid 1234, an empty directory, a 100 MiB file) has equal manifests on
both nodes; the source is kept, retired, listed and purged; a target engine killed mid-copy
leaves the instance running on the source with its data and no partial copy once it is back; a
cross-zone move of a zone-topology volume is refused with the nodes it may go to.

On the session testbed: node-1 (zone a), node-2 (zone b), node-3 (zone c).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest

from moorage.agent import volume_manifest
from tests.e2e.conftest import Bed
from tests.e2e.test_e2e_stacks import containers
from tests.e2e.test_e2e_volumes import redis_cli
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

NODES = ("node-1", "node-2", "node-3")

TREE = r"""
set -e
cd /data
mkdir -p tree/empty tree/deep/er
i=0
while [ $i -lt 1000 ]; do echo "file $i" > tree/deep/f$i; i=$((i+1)); done
echo shared > tree/a
ln tree/a tree/deep/a-link
ln -s ../a tree/deep/to-a
echo mine > tree/owned
chown 1234:1234 tree/owned
chmod 0600 tree/owned
dd if=/dev/urandom of=tree/big bs=1M count=100 2>/dev/null
"""


def _running(bed: Bed, service_id: str, nodes: tuple[str, ...] = NODES) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        listed = list(containers(bed, service_id, nodes).values())
        return listed[0] if len(listed) == 1 and listed[0]["status"] == "running" else None

    one: dict[str, Any] = wait_until(found, 90, f"one running container of {service_id}")
    return one


def _manifest(bed: Bed, node: str, volume: str) -> volume_manifest.Manifest:
    """The manifest of a Docker volume's data as a user would take it: tar in a container."""
    out = bed.docker(node).containers.run(
        "busybox:local",
        ["tar", "c", "-C", "/v", "."],
        volumes={volume: {"bind": "/v", "mode": "ro"}},
        remove=True,
    )
    return volume_manifest.of_tar(io.BytesIO(out))


def _sha256(bed: Bed, node: str, volume: str, path: str) -> str:
    out = bed.docker(node).containers.run(
        "busybox:local",
        ["sha256sum", f"/v/{path}"],
        volumes={volume: {"bind": "/v", "mode": "ro"}},
        remove=True,
    )
    return str(out.decode().split()[0])


def _has_volume(bed: Bed, node: str, volume: str) -> bool:
    return any(v.name == volume for v in bed.docker(node).volumes.list())


def _redis_service(
    bed: Bed, name: str, volume: str, driver: str = "local", topology: str | None = None
) -> None:
    create = ["volume", "create", "--scope", "instance", "--driver", driver, volume]
    if topology:
        create[2:2] = ["--topology", topology]
    bed.ok(*create)
    bed.ok(
        "service",
        "create",
        "-v",
        f"{volume}:/data",
        name,
        "redis:local",
        "--cmd",
        "redis-server --appendonly yes",
    )
    bed.ok("service", "deploy", name)


def _instance(bed: Bed, volume: str) -> dict[str, Any]:
    (instance,) = json.loads(bed.ok("volume", "show", volume, "--json"))["instances"]
    return dict(instance)


def _other(node: str) -> str:
    return "node-2" if node == "node-1" else "node-1"


def test_a_redis_volume_moves_with_its_data_and_the_source_is_retired(bed: Bed, name: str) -> None:
    volume, service_id = f"{name}-data", f"testbed/null/{name}"
    _redis_service(bed, name, volume)
    first = _running(bed, service_id)
    home = first["node"]
    target = _other(home) if home != "node-3" else "node-1"
    for i in range(50):
        assert redis_cli(first["container"], "set", f"key{i}", f"value{i}") == "OK"
    code, out = first["container"].exec_run(["sh", "-c", TREE])
    assert code == 0, out
    docker_name = _instance(bed, volume)["name"]

    plan = bed.ok("volume", "move", volume, docker_name, "--to", target, "--dry-run")
    assert f"{home} (zone" in plan and f"-> {target}" in plan and "method: copy" in plan, plan
    assert f"stops: {name}-1" in plan and "MiB in" in plan, plan
    assert _instance(bed, volume)["node"] == home, "a dry run changes nothing"

    moved = bed.ok("volume", "move", volume, docker_name, "--to", target, timeout=600)
    assert f"Moved {docker_name} to {target}" in moved, moved
    now = _running(bed, service_id)
    assert now["node"] == target
    assert wait_until(lambda: redis_cli(now["container"], "get", "key49") == "value49", 30, "redis to load")
    assert redis_cli(now["container"], "dbsize") == "50"
    assert _instance(bed, volume)["node"] == target
    assert not containers(bed, service_id, (home,)), "no container of it left on the source"

    # the source: still there, retired, listed; equal manifests (the tree included)
    assert _has_volume(bed, home, docker_name)
    shown = json.loads(bed.ok("volume", "show", volume, "--json"))
    assert [(r["name"], r["node"]) for r in shown["retired"]] == [(docker_name, home)]
    assert f"retired:\n    - name: {docker_name}\n      node: {home}" in bed.ok("volume", "show", volume)
    source, copy = _manifest(bed, home, docker_name), _manifest(bed, target, docker_name)
    tree = {p: e for p, e in source.items() if p.startswith("tree/")}
    assert len(tree) > 1000 and tree["tree/big"].size == 100 * 2**20
    assert tree["tree/owned"].uid == 1234 and tree["tree/empty"].kind == "dir"
    assert tree["tree/a"].link == tree["tree/deep/a-link"].link == "tree/a"
    assert tree["tree/deep/to-a"].target == "../a"
    assert (
        volume_manifest.first_difference(tree, {p: e for p, e in copy.items() if p.startswith("tree/")})
        is None
    )

    # purge: asks first, then the source goes from its node
    refused = bed.run("volume", "purge", volume, docker_name)
    assert refused.code == 1 and "--force" in refused.text, refused.text
    assert "Purging retired copy" in bed.ok("volume", "purge", "--force", volume, docker_name)
    wait_until(lambda: not _has_volume(bed, home, docker_name), 60, "the retired copy to be deleted")
    wait_until(
        lambda: not json.loads(bed.ok("volume", "show", volume, "--json"))["retired"], 30, "no retired"
    )
    assert _has_volume(bed, target, docker_name)
    bed.ok("service", "rm", "--force", name)
    bed.ok("volume", "rm", "--force", volume)


def test_a_target_engine_killed_mid_copy_leaves_the_instance_on_the_source(bed: Bed, name: str) -> None:
    volume, service_id = f"{name}-data", f"testbed/null/{name}"
    _redis_service(bed, name, volume)
    first = _running(bed, service_id)
    home = first["node"]
    target = _other(home) if home != "node-3" else "node-1"
    assert redis_cli(first["container"], "set", "kept", "yes") == "OK"
    code, out = first["container"].exec_run(
        ["sh", "-c", "dd if=/dev/urandom of=/data/bulk bs=1M count=300 2>/dev/null"]
    )
    assert code == 0, out
    docker_name = _instance(bed, volume)["name"]
    before = _sha256(bed, home, docker_name, "bulk")

    move = subprocess.Popen(
        [sys.executable, "-m", "moorage", "volume", "move", volume, docker_name, "--to", target, "--json"],
        env={**os.environ, **bed.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: _has_volume(bed, target, docker_name), 60, "the copy to begin on the target")
        bed.ok("testbed", "node", "stop", "--kill", target, "--dir", str(bed.directory))
        out, err = move.communicate(timeout=300)
    finally:
        if move.poll() is None:
            move.kill()
            move.wait()
    try:
        assert move.returncode == 1, out + err
        assert "failed" in err and target in err, err
        back = _running(bed, service_id, (home,))
        assert redis_cli(back["container"], "get", "kept") == "yes"
        assert _sha256(bed, home, docker_name, "bulk") == before, "source data unchanged"
        assert _instance(bed, volume)["node"] == home
    finally:
        bed.ok("testbed", "node", "start", target, "--dir", str(bed.directory))
    wait_until(lambda: not _has_volume(bed, target, docker_name), 60, "no partial copy on the target")
    assert json.loads(bed.ok("volume", "show", volume, "--json"))["retired"] == []
    bed.ok("service", "rm", "--force", name)
    bed.ok("volume", "rm", "--force", volume)


def test_a_cross_zone_move_of_a_zone_volume_is_refused(bed: Bed, name: str) -> None:
    volume, service_id = f"{name}-data", f"testbed/null/{name}"
    _redis_service(bed, name, volume, driver="shared", topology="zone")
    home = _running(bed, service_id)["node"]
    made = _instance(bed, volume)
    target = "node-3" if home != "node-3" else "node-1"
    refused = bed.fails("volume", "move", volume, made["name"], "--to", target)
    message = refused.err
    assert (
        f"volume instance {made['name']}" in message and f"from node {home} (zone {made['zone']})" in message
    )
    assert f"to node {target} (zone " in message and "Nodes it may move to: none" in message, message
    assert _instance(bed, volume)["node"] == home
    bed.ok("service", "rm", "--force", name)
    bed.ok("volume", "rm", "--force", volume)


QUICK = r"""
set -e
cd /v
mkdir -p "a dir/deep" empty
echo one > "a dir/with  spaces"
echo two > "a dir/deep/two"
ln "a dir/deep/two" "a dir/deep/two-link"
ln -s "../with  spaces" "a dir/deep/to-spaces"
dd if=/dev/urandom of=big bs=1M count=3 2>/dev/null
mkfifo pipe
"""


def test_a_volume_is_listed_by_stat_as_its_manifest_names_it_or_not_at_all(bed: Bed, name: str) -> None:
    """The quick check's listing on a real engine (``VolumeData.stats``, busybox's find and stat
    in a helper): the same paths as the manifest, no data read; a file name with a newline in it
    cannot be listed exactly, so the listing is refused (the move then reads the volume whole)."""
    from moorage.agent.engine import DockerHelpers, Engine
    from moorage.agent.volume_data import VolumeData

    client = bed.docker("node-1")
    volume = f"{name}-quick"
    client.volumes.create(volume)
    engine = Engine(bed.env["DOCKER_HOST_1"])
    try:
        client.containers.run(
            "busybox:local", ["sh", "-c", QUICK], volumes={volume: {"bind": "/v"}}, remove=True
        )
        data = VolumeData(DockerHelpers(engine), "busybox:local")
        listing = data.stats(volume)
        manifest = data.manifest(volume)
        assert listing is not None
        assert set(listing.paths) == set(manifest) and "a dir/with  spaces" in manifest
        assert listing.paths["big"].size == manifest["big"].size == 3 * 2**20
        assert listing.paths["a dir/deep/two"].inode == listing.paths["a dir/deep/two-link"].inode
        assert abs(listing.clock - time.time()) < 60, "the node's clock, in seconds"

        client.containers.run(
            "busybox:local",
            ["sh", "-c", "touch '/v/new\nline'"],
            volumes={volume: {"bind": "/v"}},
            remove=True,
        )
        assert data.stats(volume) is None
    finally:
        engine.close()
        client.volumes.get(volume).remove()

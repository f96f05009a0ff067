"""Volume moves vs the raw pipe between the same two engines, in one run.

    python bench/bench_volume_move.py            # a 1 GiB volume of mixed file sizes
    python bench/bench_volume_move.py --smoke    # 24 MiB: checks that it still works

On a 2-node testbed (``--dir``, default /tmp/mrg-bench-move):

raw       ``docker run -v src:/s busybox tar c -C /s . | docker run -i -v dst:/d busybox tar x -C /d``
          from node-1's engine to node-2's (the docker CLI on both ends of one pipe)
move      ``POST /v1/volumes/{grid}/{v}/moves`` of the same data (a service's instance-scope volume)
          from node-1 to node-2 until the job succeeded: both passes through the master, both
          manifests read back (verification included)
downtime  a second move (back to node-1, after purging the retired copy there) while 1% of the
          data is rewritten during its first pass: from the moment the move stopped the instance
          to the moment its container started on the target (the engine's StartedAt)

Prints ``move/raw`` (target ≤ 1.5) and ``downtime/move`` (target ≤ 0.2). Needs root and docker.io.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from benchlib import BenchError, load_average, log, machine
from moorage.client.api import MasterClient
from moorage.testbed.bed import Testbed
from moorage.testbed.images import BUSYBOX

TIMEOUT = 1800.0
POLL = 0.1


def _fill(mib: int) -> str:
    """A shell script writing ``mib`` MiB into /data: half in one file, a quarter in 4 MiB files,
    a quarter in 64 KiB files (plus directories), incompressible."""
    big, mid, small = mib // 2, mib // 4 // 4, mib // 4 * 16
    return (
        "set -e; cd /data; mkdir -p mid small/a small/b; "
        f"dd if=/dev/urandom of=big bs=1M count={big} 2>/dev/null; "
        f"i=0; while [ $i -lt {mid} ]; do dd if=/dev/urandom of=mid/f$i bs=1M count=4 2>/dev/null; i=$((i+1)); done; "
        f"i=0; while [ $i -lt {small} ]; do dd if=/dev/urandom of=small/a/f$i bs=64k count=1 2>/dev/null; "
        "i=$((i+1)); done"
    )


def _change(mib: int) -> str:
    """Rewrite about 1% of the data: some of the 64 KiB files and one 4 MiB file."""
    files = max(1, mib * 16 // 100 // 2)
    return (
        "set -e; cd /data; dd if=/dev/urandom of=mid/f0 bs=1M count=4 conv=notrunc 2>/dev/null; "
        f"i=0; while [ $i -lt {files} ]; do dd if=/dev/urandom of=small/a/f$i bs=64k count=1 2>/dev/null; i=$((i+1)); done"
    )


def _docker(host: str, *args: str) -> list[str]:
    return ["docker", "-H", host, *args]


def raw_pipe(src_host: str, dst_host: str, src: str, dst: str) -> float:
    subprocess.run(_docker(dst_host, "volume", "create", dst), check=True, capture_output=True)
    began = time.monotonic()
    reader = subprocess.Popen(
        _docker(src_host, "run", "--rm", "-v", f"{src}:/s", BUSYBOX, "tar", "c", "-C", "/s", "."),
        stdout=subprocess.PIPE,
    )
    writer = subprocess.run(
        _docker(dst_host, "run", "--rm", "-i", "-v", f"{dst}:/d", BUSYBOX, "tar", "x", "-C", "/d"),
        stdin=reader.stdout,
        capture_output=True,
    )
    assert reader.stdout is not None
    reader.stdout.close()
    if reader.wait() != 0 or writer.returncode != 0:
        raise BenchError(f"raw pipe failed: {writer.stderr.decode()}")
    took = time.monotonic() - began
    subprocess.run(_docker(dst_host, "volume", "rm", dst), check=True, capture_output=True)
    return took


def _stamp(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def move(
    master: MasterClient,
    grid: str,
    volume: str,
    docker_name: str,
    to: str,
    while_copying: Callable[[], object] | None = None,
) -> dict[str, Any]:
    """Start a move, run ``while_copying`` (if any), wait for the job; its view with ``took``
    (seconds) and ``phases`` (seconds in each, as polled)."""
    began = time.monotonic()
    job = master.post(f"/v1/volumes/{grid}/{volume}/moves", {"docker_volume": docker_name, "to": to})["move"]
    if while_copying is not None:
        while_copying()
    phases: dict[str, float] = {}  # seconds in each phase, as polled (to see where the time goes)
    phase, since = job["phase"], began
    while job["state"] == "running":
        if time.monotonic() - began > TIMEOUT:
            raise BenchError("move still running after the timeout")
        time.sleep(POLL)
        job = master.get(f"/v1/volumes/{grid}/{volume}/moves/{job['id']}")
        if job["phase"] != phase or job["state"] != "running":
            now = time.monotonic()
            phases[phase] = phases.get(phase, 0.0) + now - since
            phase, since = job["phase"], now
            log(f"{time.time():.1f} phase {phase}")
    if job["state"] != "succeeded":
        raise BenchError(f"move failed: {job['message']}")
    job["took"] = time.monotonic() - began
    job["phases"] = phases
    return dict(job)


def _phases(job: dict[str, Any]) -> str:
    return ", ".join(f"{name} {took:.1f}s" for name, took in job["phases"].items())


def _container(host: str, service_id: str) -> dict[str, Any] | None:
    out = subprocess.run(
        _docker(host, "ps", "-q", "--filter", f"label=io.moorage.service-id={service_id}"),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if not out:
        return None
    started = subprocess.run(
        _docker(host, "inspect", "-f", "{{.State.StartedAt}}", out[0]),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return {"id": out[0], "started_at": started}


def _wait_container(host: str, service_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = _container(host, service_id)
        if found is not None:
            return found
        time.sleep(POLL)
    raise BenchError(f"no running container of {service_id} on {host}")


def _wait_gone(host: str, volume: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        names = subprocess.run(
            _docker(host, "volume", "ls", "-q"), capture_output=True, text=True
        ).stdout.split()
        if volume not in names:
            return
        time.sleep(0.2)
    raise BenchError(f"volume {volume} still on {host}")


def run(directory: Path, mib: int) -> None:
    testbed = Testbed(directory)
    try:
        state = testbed.up(nodes=2)
        assert state.master is not None
        hosts = {node.name: node.paths.docker_host for node in state.nodes}
        grid = state.master.grid
        with MasterClient(state.master.url, state.master.admin_token, timeout=120) as master:
            master.post(f"/v1/volumes/{grid}", {"name": "bench", "scope": "instance", "driver": "local"})
            master.post(
                f"/v1/services/{grid}",
                {"name": "mover", "image": BUSYBOX, "volumes": ["bench:/data"], "cmd": "sleep 36000",
                 "affinity": ["node==node-1"]},
            )  # fmt: skip
            master.post(f"/v1/services/{grid}/null/mover/deploy")
            service_id = f"{grid}/null/mover"
            first = _wait_container(hosts["node-1"], service_id)
            log(f"writing {mib} MiB into the volume on node-1")
            filled = subprocess.run(_docker(hosts["node-1"], "exec", first["id"], "sh", "-c", _fill(mib)))
            if filled.returncode != 0:
                raise BenchError("could not write the data")
            (instance,) = master.get(f"/v1/volumes/{grid}/bench")["instances"]
            docker_name = instance["name"]
            log("raw pipe node-1 -> node-2")
            raw = raw_pipe(hosts["node-1"], hosts["node-2"], docker_name, "bench-raw")
            log(f"raw pipe: {raw:.1f}s; moorage move node-1 -> node-2")
            full = move(master, grid, "bench", docker_name, "node-2")
            log(
                f"move: {full['took']:.1f}s; purging node-1's retired copy, then a move back with 1% changing"
            )
            master.post(f"/v1/volumes/{grid}/bench/purge", {"docker_volumes": [docker_name]})
            _wait_gone(hosts["node-1"], docker_name)
            deadline = time.monotonic() + 60
            while master.get(f"/v1/volumes/{grid}/bench")["retired"]:  # as 'volume show' says
                if time.monotonic() > deadline:
                    raise BenchError("the purged copy is still listed as retired")
                time.sleep(POLL)
            running = _wait_container(hosts["node-2"], service_id)
            job = move(
                master,
                grid,
                "bench",
                docker_name,
                "node-1",
                while_copying=lambda: subprocess.run(
                    _docker(hosts["node-2"], "exec", running["id"], "sh", "-c", _change(mib)), check=True
                ),
            )
            back = _wait_container(hosts["node-1"], service_id)
            downtime = _stamp(back["started_at"]) - _stamp(job["stopped_at"])
            started = _stamp(back["started_at"]) - _stamp(job["switched_at"])
    finally:
        testbed.down()
    print(f"{machine()}; load average {load_average():.1f}")
    print(f"volume: {mib} MiB (one big file, 4 MiB files, 64 KiB files)")
    print(f"raw pipe (docker run tar c | docker run -i tar x): {raw:.2f}s")
    print(f"moorage volume move (through the master, verified): {full['took']:.2f}s ({_phases(full)})")
    print(
        f"downtime of a move with 1% changed while it ran: {downtime:.2f}s "
        f"({_phases(job)}; the container started {started:.1f}s after the switch)"
    )
    print(f"move/raw = {full['took'] / raw:.2f} (target <= 1.5)")
    print(f"downtime/move = {downtime / full['took']:.3f} (target <= 0.2)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="24 MiB, to check that it still works")
    parser.add_argument("--mib", type=int, default=1024, help="size of the volume's data")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/mrg-bench-move"))
    args = parser.parse_args()
    try:
        run(args.dir, 24 if args.smoke else args.mib)
    except BenchError as err:
        print(f"bench failed: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

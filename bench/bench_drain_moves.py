"""How many of a drain's volume moves should copy at once: N moves one at a time, two at a time
and all at once, between the same two engines, in one run.

    python bench/bench_drain_moves.py              # 4 volumes of 64 MiB
    python bench/bench_drain_moves.py --volumes 6 --mib 32
    python bench/bench_drain_moves.py --smoke      # 2 volumes of 2 MiB: checks that it still works

On a 2-node testbed (``--dir``, default /tmp/mrg-bench-drain): N services on node-1, each with
its own instance-scope ``local`` volume of ``--mib`` MiB (mixed file sizes, as
bench_volume_move.py writes). Each round moves every volume instance to the other node through
``POST /v1/volumes/{grid}/{v}/moves``, at most K at a time (what ``node drain`` does with
``MOVES_AT_ONCE``), then purges the copies it retired so the next round can move them back.
Prints per K the round's wall time and the mean stop-to-switch time of its moves (each
instance's downtime, as the job records it), and both as ratios to K=1. Needs root and docker.io.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench_volume_move import _fill, _wait_container, _wait_gone
from benchlib import BenchError, load_average, log, machine
from moorage.client.api import MasterClient
from moorage.testbed.bed import Testbed
from moorage.testbed.images import BUSYBOX

POLL = 0.1
TIMEOUT = 1800.0


def _stamp(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _round(
    master: MasterClient, grid: str, names: dict[str, str], to: str, at_once: int
) -> tuple[float, float]:
    """Move every volume instance to ``to``, ``at_once`` at a time: (wall seconds, mean downtime)."""
    began = time.monotonic()
    waiting = list(names.items())  # volume -> docker name
    running: dict[str, tuple[str, str]] = {}  # job id -> (volume, docker name)
    downtimes: list[float] = []
    while waiting or running:
        while waiting and len(running) < at_once:
            volume, docker_name = waiting.pop(0)
            job = master.post(f"/v1/volumes/{grid}/{volume}/moves", {"docker_volume": docker_name, "to": to})
            running[job["move"]["id"]] = (volume, docker_name)
        time.sleep(POLL)
        for job_id, (volume, _) in list(running.items()):
            job = master.get(f"/v1/volumes/{grid}/{volume}/moves/{job_id}")
            if job["state"] == "running":
                continue
            if job["state"] != "succeeded":
                raise BenchError(f"move of {volume} failed: {job['message']}")
            downtimes.append(_stamp(job["switched_at"]) - _stamp(job["stopped_at"]))
            del running[job_id]
        if time.monotonic() - began > TIMEOUT:
            raise BenchError("moves still running after the timeout")
    return time.monotonic() - began, sum(downtimes) / len(downtimes)


def _purge(master: MasterClient, grid: str, names: dict[str, str], host: str) -> None:
    for volume, docker_name in names.items():
        master.post(f"/v1/volumes/{grid}/{volume}/purge", {"docker_volumes": [docker_name]})
    for docker_name in names.values():
        _wait_gone(host, docker_name)
    deadline = time.monotonic() + 60
    while any(master.get(f"/v1/volumes/{grid}/{v}")["retired"] for v in names):
        if time.monotonic() > deadline:
            raise BenchError("purged copies still listed as retired")
        time.sleep(POLL)


def run(directory: Path, count: int, mib: int) -> None:
    testbed = Testbed(directory)
    results: dict[int, tuple[float, float]] = {}
    try:
        state = testbed.up(nodes=2)
        assert state.master is not None
        hosts = {node.name: node.paths.docker_host for node in state.nodes}
        grid = state.master.grid
        names: dict[str, str] = {}
        with MasterClient(state.master.url, state.master.admin_token, timeout=120) as master:
            master.post(f"/v1/nodes/{grid}/node-2/drain")  # every instance on node-1 first
            for i in range(count):
                volume, service = f"bench{i}", f"mover{i}"
                master.post(f"/v1/volumes/{grid}", {"name": volume, "scope": "instance", "driver": "local"})
                master.post(
                    f"/v1/services/{grid}",
                    {"name": service, "image": BUSYBOX, "volumes": [f"{volume}:/data"], "cmd": "sleep 36000"},
                )
                master.post(f"/v1/services/{grid}/null/{service}/deploy")
            log(f"writing {mib} MiB into each of {count} volumes")
            for i in range(count):
                service_id = f"{grid}/null/mover{i}"
                (instance,) = _instances(master, grid, f"bench{i}")
                container = _wait_container(hosts[instance["node"]], service_id)
                filled = subprocess.run(
                    ["docker", "-H", hosts[instance["node"]], "exec", container["id"], "sh", "-c", _fill(mib)]
                )
                if filled.returncode != 0:
                    raise BenchError("could not write the data")
                names[f"bench{i}"] = instance["name"]
            master.post(f"/v1/nodes/{grid}/node-2/undrain")
            where = "node-1"
            for at_once in sorted({1, 2, count}):
                to = "node-2" if where == "node-1" else "node-1"
                log(f"moving {count} volumes {where} -> {to}, {at_once} at a time")
                results[at_once] = _round(master, grid, names, to, at_once)
                log(f"  {results[at_once][0]:.1f}s, mean downtime {results[at_once][1]:.2f}s")
                _purge(master, grid, names, hosts[where])
                where = to
    finally:
        testbed.down()
    print(f"{machine()}; load average {load_average():.1f}")
    print(f"{count} volumes of {mib} MiB each (one big file, 4 MiB files, 64 KiB files), node to node")
    base_wall, base_down = results[1]
    for at_once, (wall, down) in results.items():
        print(
            f"{at_once} at a time: {wall:.2f}s for all, mean stop-to-switch {down:.2f}s; "
            f"time/one-at-a-time = {wall / base_wall:.2f}, downtime/one-at-a-time = {down / base_down:.2f}"
        )


def _instances(master: MasterClient, grid: str, volume: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found: list[dict[str, Any]] = master.get(f"/v1/volumes/{grid}/{volume}")["instances"]
        if found:
            return found
        time.sleep(POLL)
    raise BenchError(f"no volume instance of {volume}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--smoke", action="store_true", help="2 volumes of 2 MiB, to check that it still works"
    )
    parser.add_argument("--volumes", type=int, default=4)
    parser.add_argument("--mib", type=int, default=64, help="size of each volume's data")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/mrg-bench-drain"))
    args = parser.parse_args()
    try:
        run(args.dir, 2 if args.smoke else args.volumes, 2 if args.smoke else args.mib)
    except BenchError as err:
        print(f"bench failed: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

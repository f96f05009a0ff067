"""Volume operations: definitions through the API and Docker volumes through agents vs raw Docker.

    python bench/bench_volume_ops.py            # 200 volumes, 3 runs (a few minutes)
    python bench/bench_volume_ops.py --smoke    # 5 volumes, 1 run: checks that it still works

On a 1-node testbed (``--dir``, default /tmp/mrg-bench-volumes), one after the other in an order
rotated from run to run; each figure is the median of the runs.

raw          ``docker volume create`` of V volumes straight to the engine, in parallel (8 threads),
             then ``docker volume rm`` of them in parallel
definitions  V ``POST /v1/volumes/{grid}`` in parallel (8 threads), then V ``DELETE``: the master
             records and drops definitions (no engine involved)
agents       the path that really makes an agent create and remove Docker volumes: an instance-scope
             volume and a service of V instances mounting it. Create: from ``POST …/deploy`` until
             the engine has all V labelled Docker volumes. Remove: once the service is gone, from
             ``DELETE /v1/volumes/{grid}/{name}`` until the engine no longer has any of them
             (the master tells the agent, the agent deletes each labelled volume)

Needs root and docker.io (the testbed).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import docker.errors

from bench_deploy import deploy_and_wait
from benchlib import (
    IMAGE,
    Bed,
    BenchError,
    load_average,
    log,
    machine,
    median,
    one_node_bed,
    parallel,
    rotations,
    wait_until,
)

WORKERS = 8
TIMEOUT = 900.0


@dataclass
class Figures:
    raw_create: list[float] = field(default_factory=list)
    raw_rm: list[float] = field(default_factory=list)
    api_create: list[float] = field(default_factory=list)
    api_rm: list[float] = field(default_factory=list)
    agent_create: list[float] = field(default_factory=list)
    agent_rm: list[float] = field(default_factory=list)
    agent_deploy: list[float] = field(default_factory=list)
    master_cpu: list[float] = field(default_factory=list)
    agent_cpu: list[float] = field(default_factory=list)


def run_raw(bed: Bed, count: int, tag: str) -> tuple[float, float]:
    names = [f"raw{tag}-{i}" for i in range(1, count + 1)]
    began = time.monotonic()
    parallel(lambda name: bed.api.create_volume(name=name, driver="local"), names, WORKERS)
    created = time.monotonic() - began
    began = time.monotonic()
    parallel(bed.api.remove_volume, names, WORKERS)
    removed = time.monotonic() - began
    return created, removed


def run_api(bed: Bed, count: int, tag: str) -> tuple[float, float]:
    names = [f"def{tag}-{i}" for i in range(1, count + 1)]
    grid = bed.grid
    began = time.monotonic()
    parallel(
        lambda name: bed.master.post(
            f"/v1/volumes/{grid}", {"name": name, "scope": "instance", "driver": "local"}
        ),
        names,
        WORKERS,
    )
    created = time.monotonic() - began
    listed = {v["name"] for v in bed.master.get(f"/v1/volumes/{grid}")["volumes"]}
    if not set(names) <= listed:
        raise BenchError(f"{len(set(names) - listed)} of the {count} volume definitions are not listed")
    began = time.monotonic()
    parallel(lambda name: bed.master.delete(f"/v1/volumes/{grid}/{name}"), names, WORKERS)
    removed = time.monotonic() - began
    return created, removed


def _volumes(bed: Bed, label: str) -> int:
    return len(bed.api.volumes(filters={"label": label}).get("Volumes") or [])


def _containers(bed: Bed, label: str) -> int:
    return len(bed.api.containers(all=True, filters={"label": label}))


def run_agents(bed: Bed, count: int, tag: str) -> tuple[float, float, float, float, float]:
    """Create and remove seconds, the whole deploy's seconds, master and agent CPU seconds."""
    volume, service = f"av{tag}", f"as{tag}"
    volume_label = f"io.moorage.volume-id={bed.grid}/{volume}"
    service_label = f"io.moorage.service-id={bed.grid}/null/{service}"
    bed.master.post(f"/v1/volumes/{bed.grid}", {"name": volume, "scope": "instance", "driver": "local"})
    removed_definition = False
    try:
        bed.master.post(
            f"/v1/services/{bed.grid}",
            {
                "name": service,
                "image": IMAGE,
                "instances": count,
                "volumes": [f"{volume}:/data"],
                "cmd": "sleep 3600",
            },
        )
        try:
            cpu_before = bed.cpu()
            seen: list[float] = []
            began = time.monotonic()

            # The deploy runs in the master; watch the engine for the volumes meanwhile.
            def watch() -> None:
                wait_until(lambda: _volumes(bed, volume_label) >= count, TIMEOUT, "the volumes", 0.02)
                seen.append(time.monotonic() - began)

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            deployed, _ = deploy_and_wait(bed.master, bed.grid, service)
            watcher.join(TIMEOUT)
            if not seen:
                raise BenchError(f"the engine never had all {count} volumes")
            created = seen[0]
        finally:
            bed.master.delete(f"/v1/services/{bed.grid}/null/{service}")
            wait_until(lambda: _containers(bed, service_label) == 0, TIMEOUT, "the containers to go", 0.2)
        began = time.monotonic()
        bed.master.delete(f"/v1/volumes/{bed.grid}/{volume}")
        removed_definition = True
        wait_until(lambda: _volumes(bed, volume_label) == 0, TIMEOUT, "the agent to remove the volumes", 0.02)
        removed = time.monotonic() - began
        cpu_after = bed.cpu()
    finally:
        if not removed_definition:
            bed.master.delete(f"/v1/volumes/{bed.grid}/{volume}")
            wait_until(lambda: _volumes(bed, volume_label) == 0, TIMEOUT, "the volumes to go", 0.2)
    return created, removed, deployed, cpu_after[0] - cpu_before[0], cpu_after[1] - cpu_before[1]


def measure(bed: Bed, count: int, runs: int) -> Figures:
    f = Figures()
    for run, order in enumerate(rotations(["raw", "definitions", "agents"], runs)):
        tag = f"{count}r{run}"
        for what in order:
            if what == "raw":
                created, removed = run_raw(bed, count, tag)
                f.raw_create.append(created)
                f.raw_rm.append(removed)
            elif what == "definitions":
                created, removed = run_api(bed, count, tag)
                f.api_create.append(created)
                f.api_rm.append(removed)
            else:
                created, removed, deployed, master_cpu, agent_cpu = run_agents(bed, count, tag)
                f.agent_create.append(created)
                f.agent_rm.append(removed)
                f.agent_deploy.append(deployed)
                f.master_cpu.append(master_cpu)
                f.agent_cpu.append(agent_cpu)
            log(f"  run {run + 1}: {what} create {created:.2f}s rm {removed:.2f}s")
    return f


def report(count: int, f: Figures) -> None:
    raw_c, raw_r = median(f.raw_create), median(f.raw_rm)
    raw = raw_c + raw_r
    api_c, api_r = median(f.api_create), median(f.api_rm)
    agent_c, agent_r = median(f.agent_create), median(f.agent_rm)
    print(f"volumes {count} raw docker: create {raw_c:.2f}s  rm {raw_r:.2f}s  total {raw:.2f}s", flush=True)
    print(
        f"volumes {count} definitions via API: create {api_c:.2f}s  rm {api_r:.2f}s  "
        f"total {api_c + api_r:.2f}s  api/raw {(api_c + api_r) / raw:.2f} "
        f"(create {api_c / raw_c:.2f}, rm {api_r / raw_r:.2f})",
        flush=True,
    )
    print(
        f"volumes {count} docker volumes via agents: create {agent_c:.2f}s  rm {agent_r:.2f}s  "
        f"total {agent_c + agent_r:.2f}s  agents/raw {(agent_c + agent_r) / raw:.2f} "
        f"(create {agent_c / raw_c:.2f}, rm {agent_r / raw_r:.2f})  "
        f"whole deploy of {count} instances {median(f.agent_deploy):.2f}s  "
        f"master cpu {median(f.master_cpu):.2f}s agent cpu {median(f.agent_cpu):.2f}s",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="5 volumes, one run: check that it works")
    parser.add_argument("--count", type=int, default=200, help="volumes per operation (default 200)")
    parser.add_argument("--runs", type=int, default=3, help="runs; the median is reported")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/mrg-bench-volumes"), help="testbed folder")
    args = parser.parse_args(argv)
    count = 5 if args.smoke else args.count
    runs = 1 if args.smoke else args.runs
    try:
        log(f"starting a 1-node testbed in {args.dir}")
        with one_node_bed(args.dir) as bed:
            engine = bed.api.version().get("Version", "?")
            load_start = load_average()
            figures = measure(bed, count, runs)
    except (BenchError, docker.errors.APIError) as err:
        print(f"bench_volume_ops: {err}", file=sys.stderr)
        return 1
    print(
        f"{machine()}, Docker Engine {engine}, "
        f"load average {load_start:.1f} at start, {load_average():.1f} at end"
    )
    report(count, figures)
    api = (median(figures.api_create) + median(figures.api_rm)) / (
        median(figures.raw_create) + median(figures.raw_rm)
    )
    agents = (median(figures.agent_create) + median(figures.agent_rm)) / (
        median(figures.raw_create) + median(figures.raw_rm)
    )
    print(f"target (<= 1.5 x raw): definitions {'met' if api <= 1.5 else 'NOT met'}, ", end="")
    print(f"agents {'met' if agents <= 1.5 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Deploying N replicas with a named volume each: Moorage vs Docker Swarm vs raw ``docker run``.

    python bench/bench_deploy.py            # N = 20 and 50, 3 runs each (about 10 minutes)
    python bench/bench_deploy.py --smoke    # N = 3, 1 run: checks that it still works

All three run on the same engine, a 1-node testbed (``--dir``, default /tmp/mrg-bench-deploy),
one after the other, in an order rotated from run to run; each figure is the median of the runs.

raw      parallel ``docker run -d -v v-<i>:/data busybox:local sleep 3600`` straight to the engine
         (create + start through the engine API, one thread per container), until every one runs
swarm    ``docker swarm init`` on that engine, then ``docker service create --replicas N --mount
         type=volume,source=v-{{.Task.Slot}},target=/data --detach=false busybox:local sleep 3600``
         until the command returns (the CLI waits 5 s more to see that the tasks are stable);
         ``swarm running`` is when the engine first had all N tasks' containers running
moorage  an instance-scope volume and a service of N instances mounting it, deployed through
         the master and the agent: from ``POST …/deploy`` until the deployment is ``success``
         (its ``finished_at``); with the CPU seconds the master and the agent used meanwhile
cli      the same as a person runs it: ``moorage stack install FILE`` (a stack of one service of
         N instances with its instance-scope volume), timed from the shell, fork to exit (the
         CLI follows the deployment until it ends). Target (issue 16, item 7): <= 1.1 x raw

Needs root and docker.io (the testbed).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import docker.errors

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
from moorage.client.api import MasterClient

SWARM_SERVICE = "bench-swarm"
DEPLOY_TIMEOUT = 600.0


@dataclass
class Figures:
    raw: list[float] = field(default_factory=list)
    swarm: list[float] = field(default_factory=list)
    swarm_running: list[float] = field(default_factory=list)
    moorage: list[float] = field(default_factory=list)
    master_cpu: list[float] = field(default_factory=list)
    agent_cpu: list[float] = field(default_factory=list)
    cli: list[float] = field(default_factory=list)


# ----- raw docker run ----------------------------------------------------------------------------


def _remove_all(bed: Bed, containers: list[str], volumes: list[str]) -> None:
    def remove_container(name: str) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            bed.api.remove_container(name, force=True)

    def remove_volume(name: str) -> None:
        def gone() -> bool:
            try:
                bed.api.remove_volume(name)
            except docker.errors.NotFound:
                return True
            except docker.errors.APIError as err:
                if "in use" in str(err):
                    return False  # a container that mounted it is still being removed
                raise
            return True

        wait_until(gone, 60, f"volume {name} to be removable")

    parallel(remove_container, containers, 16)
    parallel(remove_volume, volumes, 16)


def run_raw(bed: Bed, n: int, workers: int) -> float:
    names = [f"raw-{i}" for i in range(1, n + 1)]

    def run(i: int) -> None:
        host_config = bed.api.create_host_config(binds=[f"v-{i}:/data"])
        created = bed.api.create_container(
            IMAGE, ["sleep", "3600"], name=names[i - 1], host_config=host_config
        )
        bed.api.start(created["Id"])

    began = time.monotonic()
    try:
        parallel(run, list(range(1, n + 1)), workers)
        wait_until(
            lambda: len(bed.api.containers(filters={"name": "raw-", "status": "running"})) >= n,
            DEPLOY_TIMEOUT,
            f"{n} raw containers to run",
            interval=0.02,
        )
        return time.monotonic() - began
    finally:
        _remove_all(bed, names, [f"v-{i}" for i in range(1, n + 1)])


# ----- Docker Swarm ------------------------------------------------------------------------------


def _docker(bed: Bed, *args: str, timeout: float = 120.0) -> str:
    done = subprocess.run(
        ["docker", "-H", bed.docker_host, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"docker {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def _swarm_containers(bed: Bed, running: bool) -> list[dict[str, object]]:
    filters: dict[str, object] = {"label": f"com.docker.swarm.service.name={SWARM_SERVICE}"}
    if running:
        filters["status"] = "running"
    found: list[dict[str, object]] = bed.api.containers(all=not running, filters=filters)
    return found


def _bridge_address(bed: Bed) -> str:
    """The address of the node's docker0: inside the node's network namespace, never outside this host."""
    namespace = bed.state.nodes[0].paths.netns
    done = subprocess.run(
        ["ip", "-n", namespace, "-4", "-o", "addr", "show", "dev", "docker0"],
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"\binet (\d+\.\d+\.\d+\.\d+)/", done.stdout)
    if found is None:
        raise BenchError(f"no IPv4 address on docker0 in {namespace}: {done.stdout or done.stderr}")
    return found.group(1)


def run_swarm(bed: Bed, n: int) -> tuple[float, float]:
    """Seconds until ``service create --detach=false`` returned, and until all N tasks ran."""
    address = _bridge_address(bed)
    _docker(bed, "swarm", "init", "--advertise-addr", address, "--listen-addr", f"{address}:2377")
    try:
        all_running: list[float] = []
        stop = threading.Event()
        began = time.monotonic()

        def watch() -> None:
            while not stop.is_set():
                if len(_swarm_containers(bed, running=True)) >= n:
                    all_running.append(time.monotonic() - began)
                    return
                stop.wait(0.05)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            _docker(
                bed,
                "service", "create", "--name", SWARM_SERVICE, "--replicas", str(n),
                "--mount", "type=volume,source=v-{{.Task.Slot}},target=/data",
                "--detach=false",
                IMAGE, "sleep", "3600",
                timeout=DEPLOY_TIMEOUT,
            )  # fmt: skip
            took = time.monotonic() - began
            watcher.join(timeout=30)
        finally:
            stop.set()
        if not all_running:
            raise BenchError(f"swarm service create returned but {n} tasks were never seen running")
        _docker(bed, "service", "rm", SWARM_SERVICE)
        wait_until(lambda: not _swarm_containers(bed, running=False), 120, "the swarm tasks to go", 0.2)
        _remove_all(bed, [], [f"v-{i}" for i in range(1, n + 1)])
        return took, all_running[0]
    finally:
        _docker(bed, "swarm", "leave", "--force")


# ----- Moorage -----------------------------------------------------------------------------------


def _engine_count(bed: Bed, label: str, *, running: bool = False) -> int:
    filters: dict[str, object] = {"label": label}
    if running:
        filters["status"] = "running"
    return len(bed.api.containers(all=not running, filters=filters))


def _engine_volumes(bed: Bed, label: str) -> int:
    return len(bed.api.volumes(filters={"label": label}).get("Volumes") or [])


POLL = 0.3  # as `moorage service deploy` follows a deployment


def deploy_and_wait(master: MasterClient, grid: str, service: str) -> tuple[float, dict[str, object]]:
    """POST deploy, then poll like the CLI; seconds from the call until the master finished it."""
    began_wall = time.time()
    began = time.monotonic()
    deployment_id = master.post(f"/v1/services/{grid}/null/{service}/deploy")["deployment"]
    while True:
        shown: dict[str, object] = master.get(f"/v1/deployments/{deployment_id}")
        if shown["state"] != "running":
            break
        if time.monotonic() - began > DEPLOY_TIMEOUT:
            raise BenchError(f"deployment of {service} still running after {DEPLOY_TIMEOUT:.0f}s")
        time.sleep(POLL)
    if shown["state"] != "success":
        raise BenchError(f"deployment of {service} ended {shown['state']}: {shown.get('message')}")
    finished = datetime.fromisoformat(str(shown["finished_at"]).replace("Z", "+00:00")).timestamp()
    return finished - began_wall, shown


def run_moorage(bed: Bed, n: int, tag: str) -> tuple[float, float, float]:
    """Seconds of the deploy, and the CPU seconds of the master and the agent during it."""
    volume, service = f"bv{tag}", f"bs{tag}"
    service_label = f"io.moorage.service-id={bed.grid}/null/{service}"
    volume_label = f"io.moorage.volume-id={bed.grid}/{volume}"
    bed.master.post(f"/v1/volumes/{bed.grid}", {"name": volume, "scope": "instance", "driver": "local"})
    try:
        bed.master.post(
            f"/v1/services/{bed.grid}",
            {
                "name": service,
                "image": IMAGE,
                "instances": n,
                "volumes": [f"{volume}:/data"],
                "cmd": "sleep 3600",
            },
        )
        try:
            master_before, agent_before = bed.cpu()
            took, _ = deploy_and_wait(bed.master, bed.grid, service)
            master_after, agent_after = bed.cpu()
            running = _engine_count(bed, service_label, running=True)
            if running != n:
                raise BenchError(f"deployment succeeded but the engine runs {running} of {n} containers")
            if _engine_volumes(bed, volume_label) != n:
                raise BenchError(f"deployment succeeded but the engine lacks some of the {n} volumes")
        finally:
            bed.master.delete(f"/v1/services/{bed.grid}/null/{service}")
            wait_until(lambda: _engine_count(bed, service_label) == 0, 120, "Moorage's containers to go", 0.2)
    finally:
        bed.master.delete(f"/v1/volumes/{bed.grid}/{volume}")
        wait_until(lambda: _engine_volumes(bed, volume_label) == 0, 120, "Moorage's volumes to go", 0.2)
    return took, master_after - master_before, agent_after - agent_before


def run_cli(bed: Bed, n: int, tag: str, folder: Path) -> float:
    """Seconds of ``moorage stack install FILE`` from the shell, until it exits."""
    volume, stack = f"cv{tag}", f"cs{tag}"
    service_label = f"io.moorage.service-id={bed.grid}/{stack}/app"
    volume_label = f"io.moorage.volume-id={bed.grid}/{volume}"
    path = folder / f"{stack}.yml"
    path.write_text(
        f"stack: {stack}\nservices:\n  app:\n    image: {IMAGE}\n    command: sleep 3600\n"
        f"    instances: {n}\n    volumes:\n      - {volume}:/data\n"
        f"volumes:\n  {volume}:\n    external: true\n"
    )
    bed.master.post(f"/v1/volumes/{bed.grid}", {"name": volume, "scope": "instance", "driver": "local"})
    assert bed.state.master is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOORAGE_")}
    env |= {
        "MOORAGE_URL": bed.state.master.url,
        "MOORAGE_TOKEN": bed.state.master.admin_token,
        "MOORAGE_GRID": bed.grid,
        "MOORAGE_CONFIG": str(folder / "no-config.json"),
    }
    script = Path(sys.executable).with_name("moorage")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "moorage"]
    try:
        began = time.perf_counter()
        done = subprocess.run(
            [*command, "stack", "install", str(path)], env=env, capture_output=True, text=True,
            timeout=DEPLOY_TIMEOUT, check=False,
        )  # fmt: skip
        took = time.perf_counter() - began
        if done.returncode != 0:
            raise BenchError(f"moorage stack install exited {done.returncode}: {done.stderr[-500:]}")
        running = _engine_count(bed, service_label, running=True)
        if running != n:
            raise BenchError(f"stack install returned but the engine runs {running} of {n} containers")
    finally:
        path.unlink()
        bed.master.delete(f"/v1/stacks/{bed.grid}/{stack}")
        wait_until(lambda: _engine_count(bed, service_label) == 0, 120, "the stack's containers to go", 0.2)
        bed.master.delete(f"/v1/volumes/{bed.grid}/{volume}")
        wait_until(lambda: _engine_volumes(bed, volume_label) == 0, 120, "the stack's volumes to go", 0.2)
    return took


# ----- the run -----------------------------------------------------------------------------------


def measure(bed: Bed, n: int, runs: int, raw_workers: int | None, folder: Path) -> Figures:
    figures = Figures()
    for run, order in enumerate(rotations(["raw", "swarm", "moorage", "cli"], runs)):
        for what in order:
            if what == "cli":
                figures.cli.append(run_cli(bed, n, f"{n}r{run}", folder))
                log(f"  N={n} run {run + 1}: moorage stack install from the shell {figures.cli[-1]:.2f}s")
                continue
            if what == "raw":
                figures.raw.append(run_raw(bed, n, raw_workers or n))
                log(f"  N={n} run {run + 1}: raw {figures.raw[-1]:.2f}s")
            elif what == "swarm":
                took, running = run_swarm(bed, n)
                figures.swarm.append(took)
                figures.swarm_running.append(running)
                log(f"  N={n} run {run + 1}: swarm {took:.2f}s (all running after {running:.2f}s)")
            else:
                took, master_cpu, agent_cpu = run_moorage(bed, n, f"{n}r{run}")
                figures.moorage.append(took)
                figures.master_cpu.append(master_cpu)
                figures.agent_cpu.append(agent_cpu)
                log(
                    f"  N={n} run {run + 1}: moorage {took:.2f}s "
                    f"(master cpu {master_cpu:.2f}s, agent cpu {agent_cpu:.2f}s)"
                )
    return figures


def report(n: int, f: Figures) -> None:
    raw, swarm, moorage = median(f.raw), median(f.swarm), median(f.moorage)
    print(
        f"deploy N={n}: raw {raw:.2f}s  swarm {swarm:.1f}s  moorage {moorage:.2f}s  "
        f"moorage/raw {moorage / raw:.2f}  moorage/swarm {moorage / swarm:.2f}  "
        f"master cpu {median(f.master_cpu):.2f}s agent cpu {median(f.agent_cpu):.2f}s",
        flush=True,
    )
    print(
        f"deploy N={n} detail: swarm all running {median(f.swarm_running):.2f}s "
        f"(moorage/swarm-running {moorage / median(f.swarm_running):.2f}); runs: "
        f"raw {' '.join(f'{x:.2f}' for x in f.raw)} | swarm {' '.join(f'{x:.2f}' for x in f.swarm)} | "
        f"moorage {' '.join(f'{x:.2f}' for x in f.moorage)}",
        flush=True,
    )
    cli = median(f.cli)
    print(
        f"deploy N={n} from the shell: moorage stack install {cli:.2f}s, cli/raw {cli / raw:.2f} "
        f"(runs {' '.join(f'{x:.2f}' for x in f.cli)})",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="N=3, one run: check that it works")
    parser.add_argument("--sizes", default="20,50", help="comma-separated replica counts (default 20,50)")
    parser.add_argument("--runs", type=int, default=3, help="runs per size; the median is reported")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/mrg-bench-deploy"), help="testbed folder")
    parser.add_argument("--raw-workers", type=int, default=None, help="threads for raw (default: N)")
    args = parser.parse_args(argv)
    sizes = [3] if args.smoke else [int(s) for s in args.sizes.split(",") if s.strip()]
    runs = 1 if args.smoke else args.runs
    try:
        log(f"starting a 1-node testbed in {args.dir}")
        with one_node_bed(args.dir) as bed:
            engine = bed.api.version().get("Version", "?")
            load_start = load_average()
            run_raw(bed, 3, 3)  # warm up the engine (first mounts, first container start)
            results = {n: measure(bed, n, runs, args.raw_workers, args.dir) for n in sizes}
    except BenchError as err:
        print(f"bench_deploy: {err}", file=sys.stderr)
        return 1
    print(
        f"{machine()}, Docker Engine {engine}, "
        f"load average {load_start:.1f} at start, {load_average():.1f} at end"
    )
    for n, figures in results.items():
        report(n, figures)
    for n, figures in results.items():
        ratio_raw = median(figures.moorage) / median(figures.raw)
        ratio_swarm = median(figures.moorage) / median(figures.swarm)
        met = "met" if ratio_raw <= 1.3 and ratio_swarm <= 0.5 else "NOT met"
        print(f"target N={n} (moorage <= 1.3 x raw and <= 0.5 x swarm): {met}")
        cli_met = "met" if median(figures.cli) / median(figures.raw) <= 1.1 else "NOT met"
        print(f"target N={n} (moorage stack install from the shell <= 1.1 x raw): {cli_met}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

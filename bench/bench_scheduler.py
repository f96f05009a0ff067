"""How fast the scheduler places instances. One figure per line.

    python bench/bench_scheduler.py           # the full run (about a minute)
    python bench/bench_scheduler.py --smoke   # tiny sizes, to check it still runs

Nodes are in-memory NodeViews in 5 zones. Services have 20 instances, each with an instance-scope
volume, 256 MiB and 0.1 CPU; one service in ten publishes a host port. A NodeIndex is built once
per grid and every service's placements are committed to it, as the master would.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import replace

from moorage.model.stack import DeployStrategy, PortMapping
from moorage.model.volume import VolumeScope
from moorage.scheduler import InstanceRequest, NodeIndex, NodeView, Placement, VolumeNeed, schedule_service

MIB = 1 << 20
ZONES = 5
PER_SERVICE = 20


def make_nodes(count: int) -> list[NodeView]:
    return [
        NodeView(
            id=f"node-id-{i:05d}",
            name=f"node-{i}",
            online=True,
            labels={"zone": f"zone-{i % ZONES}", "region": "eu"},
            drivers={"local": "local", "rexray": "local"} if i % 2 else {"local": "local"},
            memory=64 * 1024 * MIB,
            cpus=16,
            used_ports=frozenset({22}),
        )
        for i in range(count)
    ]


def make_service(number: int, instances: int, *, with_volumes: bool = True) -> list[InstanceRequest]:
    service_id = f"grid/stack-{number}/web"
    ports = (PortMapping(10_000 + number, 80),) if number % 10 == 0 else ()
    return [
        InstanceRequest(
            service_id=service_id,
            instance=n,
            ports=ports,
            memory=256 * MIB,
            cpus=0.1,
            volumes=(
                (VolumeNeed("data", "local", VolumeScope.INSTANCE, f"stack-{number}.web.data-{n}"),)
                if with_volumes
                else ()
            ),
        )
        for n in range(1, instances + 1)
    ]


def pinned_again(
    requests: Sequence[InstanceRequest], placements: Sequence[Placement]
) -> list[InstanceRequest]:
    """The same service on redeploy: each instance runs where it was put, its volume lives there."""
    where = {p.instance: p.node_id for p in placements}
    return [
        replace(
            r,
            current_node=where[r.instance],
            volumes=tuple(replace(v, pinned_node=where[r.instance]) for v in r.volumes),
        )
        for r in requests
    ]


def rate(placed: int, seconds: float) -> str:
    return f"{placed / seconds:,.0f} placements/s ({placed:,} in {seconds:.2f} s)"


def one_big_service(nodes: int, instances: int) -> None:
    grid = make_nodes(nodes)
    requests = make_service(1, instances, with_volumes=False)
    start = time.perf_counter()
    placements = schedule_service(grid, requests, DeployStrategy.HA, seed="bench")
    seconds = time.perf_counter() - start
    placed = sum(p.status == "placed" for p in placements)
    print(f"ha, {nodes} nodes in {ZONES} zones, 1 service x {instances} instances: {rate(placed, seconds)}")


def many_services(nodes: int, instances: int, label: str) -> tuple[float, float]:
    """Deploy ``instances`` in services of 20, then redeploy them all (sticky and pinned)."""
    grid = make_nodes(nodes)
    start = time.perf_counter()
    index = NodeIndex(grid)
    indexed = time.perf_counter() - start
    services = [make_service(s, PER_SERVICE) for s in range(instances // PER_SERVICE)]
    deployed: list[tuple[list[InstanceRequest], list[Placement]]] = []
    placed = 0
    start = time.perf_counter()
    for requests in services:
        placements = schedule_service(index, requests, DeployStrategy.HA, seed="bench")
        index.commit(requests, placements)
        placed += sum(p.status == "placed" for p in placements)
        deployed.append((requests, placements))
    first = time.perf_counter() - start
    print(f"{label}: first deploy, ha, {nodes:,} nodes, {instances:,} instances: {rate(placed, first)}")
    again = [pinned_again(requests, placements) for requests, placements in deployed]
    placed = 0
    start = time.perf_counter()
    for requests in again:
        placements = schedule_service(index, requests, DeployStrategy.HA, seed="bench")
        index.commit(requests, placements)
        placed += sum(p.status == "placed" for p in placements)
    redeploy = time.perf_counter() - start
    print(
        f"{label}: redeploy (sticky, pinned), {nodes:,} nodes, {instances:,} instances: {rate(placed, redeploy)}"
    )
    print(f"{label}: NodeIndex of {nodes:,} nodes built in {indexed * 1000:.1f} ms")
    return first, redeploy


def fresh_index_per_service(nodes: int, services: int) -> None:
    """What a caller pays when it hands the node list to every call instead of a NodeIndex."""
    grid = make_nodes(nodes)
    start = time.perf_counter()
    placed = 0
    for s in range(services):
        placements = schedule_service(grid, make_service(s, PER_SERVICE), DeployStrategy.HA, seed="bench")
        placed += sum(p.status == "placed" for p in placements)
    seconds = time.perf_counter() - start
    print(f"no index reuse: {nodes:,} nodes, {services} services x {PER_SERVICE}: {rate(placed, seconds)}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, to check the bench still runs")
    smoke = parser.parse_args().smoke

    one_big_service(nodes=10 if smoke else 100, instances=50 if smoke else 1_000)
    many_services(nodes=200 if smoke else 5_000, instances=2_000 if smoke else 100_000, label="big")
    for nodes in (50, 100, 200) if smoke else (500, 5_000, 15_000):
        many_services(nodes=nodes, instances=1_000 if smoke else 20_000, label="scaling")
    fresh_index_per_service(nodes=200 if smoke else 5_000, services=5 if smoke else 50)


if __name__ == "__main__":
    main()

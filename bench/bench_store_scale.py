"""Scheduler at scale with the real store: placements committed per second (issue 5, scenario 1).

    python bench/bench_store_scale.py                  # SQLite file (about 2 minutes)
    python bench/bench_store_scale.py --db postgresql://moorage:moorage@127.0.0.1:5432/moorage
    python bench/bench_store_scale.py --smoke          # tiny sizes, to check it still runs

Simulated nodes (rows in the store, as agents would have registered them) in 5 zones, one in five
with an extra ``dirvol`` driver. Services of 20 instances, each instance with its own
instance-scope volume (one service in ten uses a ``dirvol`` volume). The master's own code path
runs: ``plan_services`` (the scheduler pipeline over a NodeIndex) then ``record_unplaced`` and
``record_batch`` (volume instances and instances written in bulk), one transaction per deploy of
``--services-per-deploy`` services, committed. One process, one thread: one core.

Sizes: the same 20,000 instances on 500, 5,000 and 15,000 nodes (the cost per placement as the
grid grows, against a log(nodes) bound), then the issue's scenario, 100,000 instances on 5,000
nodes. Each in a fresh store. The rate per CPU-second is the figure that holds on a shared
machine; wall-clock rates are printed too.

Published references: Kubernetes' scheduler holds 100 pods/s with a CSI volume each at 5,000
nodes; Nomad placed ~3,750 containers/s on 5,000 nodes with 5 servers. Target: >= 5,000/s.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, func, insert, select, text

from moorage.master.deployer import record_batch, record_unplaced
from moorage.master.planning import plan_services
from moorage.master.startup_heap import freeze_startup_heap
from moorage.model.stack import Mount, MountKind, ServiceSpec, StackSpec, VolumeDecl
from moorage.stackfile.stored_service import service_document
from moorage.store.database import Database, normalize_url
from moorage.store.grid_snapshot import GridSnapshots
from moorage.store.grids import create_grid, get_grid_row
from moorage.store.tables import InstanceRow, NodeRow, ServiceRow, VolumeInstanceRow
from moorage.store.volumes import create_volume

PER_SERVICE = 20
ZONES = 5


def _fresh_db(url: str | None, tmp: Path) -> tuple[Database, str | None]:
    if url is None:
        db = Database(f"sqlite:///{tmp / f'scale-{uuid.uuid4().hex[:6]}.db'}")
        db.migrate()
        return db, None
    name = f"moorage_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(normalize_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    db = Database(f"{url.rpartition('/')[0]}/{name}")
    db.migrate()
    return db, name


def _drop(url: str | None, name: str | None) -> None:
    if url is None or name is None:
        return
    admin = create_engine(normalize_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _setup(db: Database, nodes: int, services: int) -> tuple[list[int], set[str]]:
    now = datetime.now(UTC)
    with db.session() as session:
        create_grid(session, "bench")
        grid = get_grid_row(session, "bench")
        create_volume(session, "bench", name="data", scope="instance", driver="local")
        create_volume(session, "bench", name="fast", scope="instance", driver="dirvol")
        rows = []
        for i in range(nodes):
            drivers = [{"name": "local", "version": "20.10", "scope": "local"}]
            if i % 5 == 0:
                drivers.append({"name": "dirvol", "version": None, "scope": "local"})
            rows.append(
                {
                    "id": f"{i:08d}{uuid.uuid4().hex[:24]}",
                    "grid_id": grid.id,
                    "name": f"node-{i + 1}",
                    "status": "online",
                    "status_since": now,
                    "last_seen_at": now,
                    "labels": {"zone": f"zone-{i % ZONES}"},
                    "info": {"engine_version": "20.10", "cpus": 16, "memory": 64 << 30, "drivers": drivers},
                    "created_at": now,
                    "updated_at": now,
                }
            )
        session.execute(insert(NodeRow), rows)
        service_rows = []
        for s in range(services):
            volume = "fast" if s % 10 == 0 else "data"
            spec = ServiceSpec(
                name=f"svc{s}",
                image="busybox:local",
                command="sleep 3600",
                instances=PER_SERVICE,
                mounts=(Mount(MountKind.NAMED, target="/data", source=volume),),
            )
            stack = StackSpec(name="bench", services=(spec,), volumes=(VolumeDecl(volume, volume),))
            service_rows.append(
                {
                    "grid_id": grid.id,
                    "stack": "bench",
                    "name": spec.name,
                    "spec": service_document(stack, spec),
                    "created_at": now,
                    "updated_at": now,
                }
            )
        session.execute(insert(ServiceRow), service_rows)
        ids = list(session.scalars(select(ServiceRow.id).order_by(ServiceRow.id)))
        connected = set(session.scalars(select(NodeRow.id)))
    return ids, connected


def _deploy(
    db: Database, snapshots: GridSnapshots, ids: list[int], connected: set[str], per_deploy: int
) -> tuple[float, float, int]:
    """Deploy every service, ``per_deploy`` at a time; (plan seconds, write seconds, placed)."""
    plan_s = write_s = 0.0
    placed = 0
    cpu0 = time.process_time()
    for start in range(0, len(ids), per_deploy):
        chunk = ids[start : start + per_deploy]
        t0 = time.perf_counter()
        with db.session() as session:
            grid = get_grid_row(session, "bench")
            rows = list(
                session.scalars(select(ServiceRow).where(ServiceRow.id.in_(chunk)).order_by(ServiceRow.id))
            )
            plans = plan_services(session, grid, rows, connected, snapshots)
            t1 = time.perf_counter()
            record_unplaced(session, grid.id, plans, connected)
            batch = [i for p in plans for i in p.instances if i.kind in ("start", "replace")]
            record_batch(session, grid.id, batch)
            placed += len(batch)
        t2 = time.perf_counter()  # committed
        plan_s += t1 - t0
        write_s += t2 - t1
    global LAST_CPU
    LAST_CPU = time.process_time() - cpu0
    return plan_s, write_s, placed


LAST_CPU = 0.0  # CPU seconds of the last _deploy: the figure that does not depend on other load


def run(nodes: int, instances: int, per_deploy: int, url: str | None, tmp: Path, label: str) -> float:
    """One size in a fresh store; the placements per CPU-second of the measured deployments."""
    db, name = _fresh_db(url, tmp)
    try:
        ids, connected = _setup(db, nodes, instances // PER_SERVICE + 1)
        # The grid's first deployment builds the grid snapshot (every node's view, the index and
        # its pools), which the master keeps until a node changes: a cost per grid, paid once,
        # printed on its own. The rest is what each placement costs.
        cpu0, wall0 = time.process_time(), time.perf_counter()
        snapshots = GridSnapshots()  # the deployer's, one per store
        _deploy(db, snapshots, ids[:1], connected, per_deploy)
        first_cpu, first_wall = time.process_time() - cpu0, time.perf_counter() - wall0
        plan_s, write_s, placed = _deploy(db, snapshots, ids[1:], connected, per_deploy)
        with db.session() as session:
            stored = session.scalar(select(func.count()).select_from(InstanceRow)) or 0
            volumes = session.scalar(select(func.count()).select_from(VolumeInstanceRow)) or 0
        assert placed == instances and stored == volumes == instances + PER_SERVICE, (stored, volumes, placed)
        total = plan_s + write_s
        rate = placed / total
        cpu_rate = placed / LAST_CPU
        print(
            f"{label} nodes={nodes} instances={instances}: {rate:,.0f} placements/s committed "
            f"({total:.2f}s wall: plan {plan_s:.2f}s, write+commit {write_s:.2f}s; "
            f"{cpu_rate:,.0f} per CPU-second; target 5,000/s -> {cpu_rate / 5000:.2f}x); "
            f"the grid's first deployment, which builds its snapshot, took {first_wall:.2f}s "
            f"({first_cpu:.2f} CPU s)",
            flush=True,
        )
        redo_plan, redo_write, redone = _deploy(db, snapshots, ids, connected, per_deploy)
        print(
            f"{label} nodes={nodes} instances={instances}: redeploy (all sticky, unchanged) "
            f"{(instances + PER_SERVICE) / (redo_plan + redo_write):,.0f} instances/s checked",
            flush=True,
        )
        assert redone == 0, "an unchanged redeploy must not move or replace anything"
        return cpu_rate
    finally:
        db.dispose()
        _drop(url, name)


def _run_apart(nodes: int, instances: int, args: argparse.Namespace) -> float:
    """``run`` in a process of its own, as a freshly started master: no cache or heap of the
    sizes before it (the grid snapshots of earlier stores would stay in this one)."""
    with tempfile.NamedTemporaryFile(prefix="moorage-bench-rate-") as result:
        command = [sys.executable, __file__, "--one", f"{nodes},{instances}", "--result", result.name]
        command += ["--services-per-deploy", str(args.services_per_deploy)]
        if args.db:
            command += ["--db", args.db]
        subprocess.run(command, check=True)
        return float(Path(result.name).read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--db", help="PostgreSQL URL (a scratch database is made and dropped); default SQLite"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes")
    parser.add_argument("--services-per-deploy", type=int, default=100)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # NODES,INSTANCES: one size, in this process
    parser.add_argument("--result", help=argparse.SUPPRESS)  # where --one writes its rate
    args = parser.parse_args(argv)
    label = "postgresql" if args.db else "sqlite"
    if args.one:
        nodes, instances = (int(part) for part in args.one.split(","))
        freeze_startup_heap()  # as the master process does once started
        with tempfile.TemporaryDirectory(prefix="moorage-bench-") as tmp:
            rate = run(nodes, instances, args.services_per_deploy, args.db, Path(tmp), label)
        Path(args.result).write_text(repr(rate))
        return 0
    # The same 20,000 instances on 500, 5,000 and 15,000 nodes: only the grid's size differs, so
    # the cost ratios show what the node count costs. Then the scenario: 100,000 on 5,000.
    growth = [(50, 400), (200, 400)] if args.smoke else [(500, 20_000), (5_000, 20_000), (15_000, 20_000)]
    headline = [] if args.smoke else [(5_000, 100_000)]
    print(
        f"machine: {os.cpu_count()} cpus, python {sys.version.split()[0]}; each size in a process of "
        "its own, one thread, with the start-up heap frozen as the master does",
        flush=True,
    )
    rates = {n: _run_apart(n, i, args) for n, i in growth}
    for n, i in headline:
        _run_apart(n, i, args)
    if not args.smoke:
        base = rates[500]
        print(
            f"{label}: cost per placement of {growth[0][1]:,} instances relative to 500 nodes: "
            + ", ".join(
                f"{n}: {base / r:.2f}x (log bound {math.log(n) / math.log(500):.2f}x)"
                for n, r in rates.items()
            ),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

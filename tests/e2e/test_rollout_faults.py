"""Faults during rolling upgrades, checked on the real engines as a user would check them.

Each test installs a stack of one service, ``app``: busybox:local running ``sleep 3600``, 10
instances over three nodes (in the stateful cases each mounts its own instance-scope ``local``
volume and writes a file to it first). It upgrades the stack by changing one environment variable
(``ROLL=1`` -> ``ROLL=2``), so every instance is replaced, in batches of max(1, 20%) = 2, and
injects one fault: once the first new container runs (mid-rollout), or before the upgrade (the
deploy is planned while a node is cut off). Then it heals the fault and checks:

1. **The batch promise.** A background thread lists the service's running containers on every
   node's engine every 150 ms (``tests/support/engine_watch.py``). At each sample an instance
   counts as *running* when it has a running container on a node that is not *away*; a node is
   away from the moment the test cuts it off (``testbed node cut``) or power-cuts its engine
   (``testbed node stop --kill``) until the heal (``node heal`` / ``node start``) has returned,
   and whenever its engine does not answer. The instances that ran on the away node just before
   the fault are *excused* (down by the fault, not by the rollout) until each runs again on a
   node that is not away. Running or excused must be at least 8 (10 less one batch) at every
   sample. A killed agent or a restarted master takes no node away: the containers keep running
   and every one of them counts.
2. **No duplicates:** never two running containers of one instance number at one sample on the
   nodes that are not away; mid-rollout, not even on every engine that answered (the master
   moves nothing off a cut node then). A deploy planned while a node is cut off moves that
   node's stateless instances to the others, and the cut node's old containers run on until its
   agent hears from the master again after the heal: a known limitation (no fencing yet, a later
   issue). There duplicates are counted on the nodes the master can reach, the cut node being
   out of that count until its stale containers are gone, which must be within the bound of 4.
3. **Data intact** (stateful cases): every instance still reads the file it wrote before the
   upgrade.
4. **Convergence within 60 s of the heal:** every instance runs exactly once, on the new config
   (config-hash label, and ``ROLL=2`` in its environment), ``GET /v1/stacks`` and
   ``stack show --json`` report every instance running and up to date, and the upgrade's
   deployment (``GET /v1/deployments/ID``) reports ``success`` -- or, when it was planned while a
   node holding some instances' volumes was cut off, ``error`` naming exactly those instances as
   pending on the offline node (they are upgraded in batches once it is back).

That the fault really landed mid-rollout is checked too: a restarted master logs that it resumes
the deployment; for a node fault, the master is seen waiting on an instance of that node.

One testbed for the module (three nodes, heartbeat every second: a silent node is offline after
3 s). The figures (fewest running, duplicates, convergence time) are printed in the run's summary.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from moorage.client.api import MasterClient
from moorage.model import docker_labels
from tests.e2e.conftest import Bed, running_testbed
from tests.e2e.test_e2e_stacks import containers
from tests.support.engine_watch import Away, EngineWatch, Sample, judge
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

N = 10
BATCH = max(1, N // 5)
PROMISE = N - BATCH  # the rollout keeps at least this many running
CONVERGE = 60.0  # seconds after the heal for everything to be on the new config
HEARTBEAT = 1.0
NODES = ("node-1", "node-2", "node-3")
FIGURES: dict[str, str] = {}  # test -> what was observed; printed in the run's summary (conftest)


@pytest.fixture(scope="module")
def rbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    with running_testbed(
        tmp_path_factory.mktemp("rollout-faults") / "config.json",
        "--nodes", "3", "--zones", "a,b,c", "--heartbeat-interval", f"{HEARTBEAT:g}",
    ) as bed:  # fmt: skip
        yield bed


def _stack_file(folder: Path, name: str, roll: int, stateful: bool) -> Path:
    """The stack at its ``roll``-th configuration: only ``ROLL`` (and the version) differ."""
    app: dict[str, Any] = {
        "image": "busybox:local",
        "command": "sleep 3600",
        "instances": N,
        "environment": {"ROLL": str(roll)},
    }
    stack: dict[str, Any] = {"stack": f"test/{name}", "version": f"0.0.{roll}", "services": {"app": app}}
    if stateful:
        app["volumes"] = [f"{name}-data:/data"]
        stack["volumes"] = {f"{name}-data": {"external": True}}
    path = folder / f"{name}.yml"
    path.write_text(yaml.safe_dump(stack, sort_keys=False))
    return path


def _all_once(sample: Sample) -> bool:
    """Every instance runs exactly once."""
    return sample.instances() == dict.fromkeys(range(1, N + 1), 1)


def _renewed(sample: Sample, old: dict[int, str]) -> set[int]:
    """The instances with a running container of a config other than the one they had."""
    return set(sample.instances(keep=lambda r: r.config_hash != old[r.instance]))


@dataclass
class Rollout:
    """An upgrade in flight: what a fault needs to act on it and to say where it is."""

    bed: Bed
    name: str
    path: Path  # the stack file
    watch: EngineWatch
    before: dict[int, str]  # instance number -> node, before the upgrade
    old: dict[int, str]  # instance number -> its config hash before the upgrade
    stateful: bool
    deployment: str = ""
    aways: list[Away] = field(default_factory=list)

    def upgrade(self) -> None:
        """``stack upgrade`` to ``ROLL=2``, not waiting for the deployment it starts."""
        _stack_file(self.path.parent, self.name, 2, self.stateful)
        said = self.bed.ok("stack", "upgrade", self.name, str(self.path), "--no-wait")
        found = re.search(r"deployment (\S+) started", said)
        assert found, said
        self.deployment = found.group(1)

    def testbed(self, *args: str) -> str:
        return self.bed.ok("testbed", *args, "--dir", str(self.bed.directory))

    def last_node(self) -> str:
        """The node of the last instance: the last batch touches it, so the fault is mid-rollout."""
        return self.before[N]

    @contextlib.contextmanager
    def away(self, node: str) -> Iterator[None]:
        """The node is away for the batch promise from now until the block has ended."""
        window = Away(node, time.monotonic())
        self.aways.append(window)
        try:
            yield
        finally:
            window.end = time.monotonic()

    def view(self) -> dict[str, Any]:
        """The upgrade's deployment as the API reports it."""
        return _api(self.bed, f"/v1/deployments/{self.deployment}")

    def master_waits_on(self, node: str) -> bool:
        """The master's view of the deployment has an instance on ``node`` not yet at its new config."""
        return any(
            c["node"] == node and not c["up_to_date"]
            for service in self.view()["services"]
            for c in service["containers"]
        )

    def wait_offline(self, node: str) -> None:
        """Until the master says the node is offline (3 missed heartbeats, or its socket closed)."""
        path = f"/v1/nodes/{self.bed.env['MOORAGE_GRID']}/{node}"
        wait_until(lambda: _api(self.bed, path)["status"] == "offline", 20, f"{node} offline")

    def hold(self, node: str) -> None:
        """While the fault lasts: the master sees the node offline and waits on an instance there."""
        self.wait_offline(node)
        wait_until(lambda: self.master_waits_on(node), 30, f"the rollout to wait on an instance of {node}")


def _api(bed: Bed, path: str) -> dict[str, Any]:
    """GET ``path`` of the testbed's master, as the CLI would (quicker to poll than a CLI run)."""
    with MasterClient(bed.env["MOORAGE_URL"], bed.env["MOORAGE_TOKEN"]) as client:
        found: dict[str, Any] = client.get(path)
    return found


def _master_log(bed: Bed) -> Path:
    return bed.directory / "master" / "master.log"


def _write_data(bed: Bed, service_id: str, name: str) -> dict[int, str]:
    """Each instance writes its own line to its volume; what each wrote, by instance number."""
    written = {}
    for found in containers(bed, service_id, NODES).values():
        number = int(found["container"].labels[docker_labels.INSTANCE])
        line = f"instance {number} of {name}"
        code, out = found["container"].exec_run(["sh", "-c", f"echo '{line}' > /data/who"])
        assert code == 0, out
        written[number] = line
    assert sorted(written) == list(range(1, N + 1))
    return written


@dataclass(frozen=True)
class Expect:
    """What a fault makes of the upgrade, beyond checks 1-4 as they always hold."""

    planned_in_fault: bool = False  # the fault starts the upgrade itself (``Rollout.upgrade``)
    moved_off_cut_node: bool = False  # its stale containers may run on until healed (no fencing)
    pending_on_cut_node: bool = False  # the upgrade reports the cut node's pinned instances pending


def _stack_view(bed: Bed, name: str) -> dict[str, Any]:
    return _api(bed, f"/v1/stacks/{bed.env['MOORAGE_GRID']}/{name}")


def _all_up_to_date(stack: dict[str, Any]) -> bool:
    (service,) = stack["services"]
    return [(c["state"], c["up_to_date"]) for c in service["containers"]] == [("running", True)] * N


def _upgrade_through(
    bed: Bed,
    folder: Path,
    name: str,
    what: str,
    fault: Callable[[Rollout], None],
    *,
    stateful: bool = False,
    expect: Expect = Expect(),
) -> None:
    """Install, upgrade, inject ``fault`` once the first new container runs (or let it upgrade
    while it lasts), wait for convergence after the heal, then check 1-4."""
    service_id = f"testbed/{name}/app"
    if stateful:
        bed.ok("volume", "create", "--scope", "instance", "--driver", "local", f"{name}-data")
    path = _stack_file(folder, name, 1, stateful)
    bed.ok("stack", "install", str(path))
    hosts = {node: bed.env[f"DOCKER_HOST_{node.rsplit('-', 1)[1]}"] for node in NODES}
    with EngineWatch(hosts, service_id) as watch:
        first = watch.wait_for(lambda s: _all_once(s) and s, 30, "10 instances running")
        old = {n: hash for n, (hash,) in first.configs().items()}
        written = _write_data(bed, service_id, name) if stateful else {}
        run = Rollout(bed, name, path, watch, first.placement(), old, stateful)
        if not expect.planned_in_fault:
            run.upgrade()
            watch.wait_for(lambda s: _renewed(s, old), 30, "the first new container to run")
        began = time.monotonic()
        fault(run)
        healed = time.monotonic()

        def converged() -> Sample | None:
            sample = watch.latest(healed)
            if sample is None or not _all_once(sample) or len(_renewed(sample, old)) < N:
                return None
            if run.view()["state"] == "running" or not _all_up_to_date(_stack_view(bed, name)):
                return None
            return sample

        final = wait_until(converged, CONVERGE, "every instance once on the new config, as the master says")
        done = time.monotonic()
    unfenced = [Away(a.node, a.start, done) for a in run.aways] if expect.moved_off_cut_node else []
    samples = watch.snapshot()
    verdict = judge(samples, run.aways, PROMISE, unfenced)
    at_fault = max((s for s in samples if s.at < began), key=lambda s: s.at)
    FIGURES[what] = (
        f"{len(_renewed(at_fault, old))}/{N} renewed when the fault began, "
        f"min running {verdict.min_running} (running or excused {verdict.min_counted}), "
        f"duplicates {len(verdict.duplicates)} (on any engine {len(verdict.duplicates_anywhere)}), "
        f"converged {done - healed:.1f}s after the heal; {verdict.samples} samples"
    )

    assert verdict.breaches == [], "\n".join(verdict.breaches)
    assert verdict.duplicates == [], "\n".join(verdict.duplicates)
    if not expect.moved_off_cut_node:
        assert verdict.duplicates_anywhere == [], "\n".join(verdict.duplicates_anywhere)
    deployment = run.view()
    if expect.pending_on_cut_node:
        (cut,) = {a.node for a in run.aways}
        lines = (deployment["message"] or "").splitlines()
        assert deployment["state"] == "error", deployment
        pinned = sorted(n for n, node in run.before.items() if node == cut)
        assert [int(line.split(":")[0].rsplit("-", 1)[1]) for line in lines] == pinned, lines
        assert all(f"lives on node {cut}, which is offline" in line for line in lines), lines
    else:
        assert (deployment["state"], deployment["message"]) == ("success", None), deployment
    placed = final.placement()
    if expect.moved_off_cut_node:
        (cut,) = {a.node for a in run.aways}
        moved = {n for n, node in run.before.items() if node == cut}
        assert moved and all(placed[n] != cut for n in moved), (run.before, placed)
        assert {n: placed[n] for n in placed if n not in moved} == {
            n: node for n, node in run.before.items() if n not in moved
        }
    else:
        assert placed == run.before, "no instance moved: each was waited for on its node"
    new = {n: hash for n, (hash,) in final.configs().items()}
    now = containers(bed, service_id, NODES)
    assert len(now) == N
    for found in now.values():
        number = int(found["container"].labels[docker_labels.INSTANCE])
        assert (found["status"], found["hash"]) == ("running", new[number])
        assert "ROLL=2" in found["container"].attrs["Config"]["Env"]
    assert _all_up_to_date(json.loads(bed.ok("stack", "show", name, "--json")))
    if stateful:
        for found in now.values():
            number = int(found["container"].labels[docker_labels.INSTANCE])
            code, out = found["container"].exec_run(["cat", "/data/who"])
            assert (code, out.decode().strip()) == (0, written[number])
    bed.ok("stack", "rm", "--force", name)
    wait_until(lambda: not containers(bed, service_id, NODES), 30, "the stack's containers to go")
    if stateful:
        bed.ok("volume", "rm", "--force", f"{name}-data")


# -- the faults ----------------------------------------------------------------------------------


def _resumed(run: Rollout) -> None:
    """The restarted master took the rollout up where it was (it had not finished)."""
    log = _master_log(run.bed).read_text()
    assert f"resuming deployment {run.deployment} (left by a stopped master" in log, log[-3000:]


def test_master_sigkill_mid_rollout_resumes_it(rbed: Bed, tmp_path: Path, name: str) -> None:
    def fault(run: Rollout) -> None:
        run.testbed("master", "restart", "--kill")
        _resumed(run)

    _upgrade_through(rbed, tmp_path, name, "master SIGKILL", fault)


def test_master_sigterm_mid_rollout_resumes_it(rbed: Bed, tmp_path: Path, name: str) -> None:
    def fault(run: Rollout) -> None:
        said = run.testbed("master", "restart")
        assert "Master restarted." in said
        _resumed(run)

    _upgrade_through(rbed, tmp_path, name, "master SIGTERM", fault)


def test_agent_killed_mid_rollout(rbed: Bed, tmp_path: Path, name: str) -> None:
    def fault(run: Rollout) -> None:
        node = run.last_node()
        run.testbed("agent", "stop", node, "--kill")
        try:
            run.hold(node)
        finally:
            run.testbed("agent", "start", node)

    _upgrade_through(rbed, tmp_path, name, "agent SIGKILL", fault)


def _power_cut(run: Rollout) -> None:
    node = run.last_node()
    with run.away(node):
        run.testbed("node", "stop", node, "--kill")
        try:
            run.hold(node)
        finally:
            run.testbed("node", "start", node)


def test_node_power_cut_mid_rollout(rbed: Bed, tmp_path: Path, name: str) -> None:
    _upgrade_through(rbed, tmp_path, name, "node power cut", _power_cut)


def test_node_cut_off_mid_rollout(rbed: Bed, tmp_path: Path, name: str) -> None:
    def fault(run: Rollout) -> None:
        node = run.last_node()
        with run.away(node):
            said = run.testbed("node", "cut", node)
            assert f"{node} cut off" in said
            try:
                run.hold(node)
            finally:
                run.testbed("node", "heal", node)

    _upgrade_through(rbed, tmp_path, name, "node cut off", fault)


def test_stateful_upgrade_through_a_node_power_cut_keeps_every_instances_data(
    rbed: Bed, tmp_path: Path, name: str
) -> None:
    _upgrade_through(rbed, tmp_path, name, "stateful, node power cut", _power_cut, stateful=True)


def _upgrade_while_cut(run: Rollout) -> None:
    """Cut a node off, then upgrade: the deploy is planned while the node is offline."""
    node = run.last_node()
    with run.away(node):
        run.testbed("node", "cut", node)
        try:
            run.wait_offline(node)
            run.upgrade()
            wait_until(lambda: run.view()["state"] != "running", 60, "the upgrade to finish without the node")
        finally:
            run.testbed("node", "heal", node)


def test_upgrade_planned_while_a_node_is_cut_off_moves_its_instances(
    rbed: Bed, tmp_path: Path, name: str
) -> None:
    expect = Expect(planned_in_fault=True, moved_off_cut_node=True)
    _upgrade_through(rbed, tmp_path, name, "planned while cut", _upgrade_while_cut, expect=expect)


def test_stateful_upgrade_planned_while_a_node_is_cut_off_rolls_its_instances_when_healed(
    rbed: Bed, tmp_path: Path, name: str
) -> None:
    expect = Expect(planned_in_fault=True, pending_on_cut_node=True)
    _upgrade_through(
        rbed, tmp_path, name, "stateful, planned while cut", _upgrade_while_cut, stateful=True, expect=expect
    )

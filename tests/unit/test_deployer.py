"""The deployer's promises, against a real SQLite file and a fake hub the test drives as the agents:
batches (new instances at once, then changed ones ``max(1, 20%)`` at a time, each batch running
before the next one's old containers are stopped), success only once every instance runs
(unchanged ones too), and supersession by a newer deployment."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from moorage.master.deployer import SUPERSEDED, Deployer
from moorage.master.wakeups import Wakeups
from moorage.model.stack import AffinityRule, Mount, MountKind, ServiceSpec, StackSpec, VolumeDecl
from moorage.stackfile import stack_to_dict
from moorage.store.database import Database
from moorage.store.deployments import DeploymentView, recent_deployments, show_deployment
from moorage.store.grids import create_grid, get_grid_row
from moorage.store.nodes import register_node
from moorage.store.stacks import install_stack, list_stacks, upgrade_stack
from moorage.store.volumes import create_volume
from tests.support.fake_agents import FakeAgents, Push

GRID = "g"
NODES = {f"node-{i}": f"n{i}" for i in range(1, 6)}
INFO = {"cpus": 2, "memory": 2**30, "drivers": [{"name": "local", "scope": "local"}]}


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'store.db'}")
    database.migrate()
    with database.session() as session:
        create_grid(session, GRID)
        grid_row = get_grid_row(session, GRID)
        for node_id, name in NODES.items():
            register_node(session, grid_row, node_id, name, [], INFO)
    return database


def _stack(instances: int, version: str, data: bool = False) -> dict[str, object]:
    """Stack ``s``: service web; with ``data``, each instance mounts its own ``data`` volume
    instance (instance scope, driver local: it pins the instance to the node that holds it)."""
    web = ServiceSpec(
        name="web",
        image="busybox:local",
        command="sleep 3600",
        environment=(("VERSION", version),),
        instances=instances,
        mounts=(Mount(MountKind.NAMED, target="/data", source="data"),) if data else (),
    )
    volumes = (VolumeDecl("data", "data"),) if data else ()
    return stack_to_dict(StackSpec(name="s", services=(web,), volumes=volumes))


def _run(db: Database, scenario: Callable[[Deployer, FakeAgents], Awaitable[None]]) -> None:
    async def main() -> None:
        wakeups = Wakeups()
        agents = FakeAgents(db, wakeups, GRID, NODES)
        deployer = Deployer(db, agents, wakeups)
        try:
            await scenario(deployer, agents)
        finally:
            await deployer.stop()

    asyncio.run(main())


async def _deploy(deployer: Deployer, db: Database, instances: int, version: str, data: bool = False) -> str:
    """Install stack ``s`` (or upgrade it) with ``instances`` of web at ``version``, and deploy it."""

    with db.session() as session:
        if list_stacks(session, GRID):
            change = upgrade_stack(session, GRID, "s", _stack(instances, version, data), "")
        else:
            change = install_stack(session, GRID, _stack(instances, version, data), "", None)
    return await deployer.deploy(GRID, change.service_ids, f"{GRID}/s")


def _deployment(db: Database, deployment_id: str) -> DeploymentView:
    with db.session() as session:
        return show_deployment(session, deployment_id)


async def _next_batch(agents: FakeAgents, seen: dict[int, str | None]) -> tuple[Push, set[int]]:
    """The next push that gives web instances a new desired config, and those instances' numbers."""
    while True:
        push = await agents.next_push()
        changed = {
            number
            for (service, number), instance in push.instances.items()
            if service == "web"
            and instance.desired_hash is not None
            and seen.get(number) != instance.desired_hash
        }
        if changed:
            for number in changed:
                seen[number] = push.instances[("web", number)].desired_hash
            return push, changed


async def _first_rollout(
    deployer: Deployer, agents: FakeAgents, db: Database, instances: int, data: bool = False
) -> dict[int, str | None]:
    """Deploy web at v1 and run every instance; returns each instance's desired hash."""
    deployment = await _deploy(deployer, db, instances, "v1", data)
    seen: dict[int, str | None] = {}
    _, batch = await _next_batch(agents, seen)
    assert batch == set(range(1, instances + 1)), "a first deployment starts every instance at once"
    await agents.report("web", batch)
    await deployer.wait_finished(deployment)
    assert _deployment(db, deployment).state == "success"
    return seen


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(10, 12, id="scale-up-and-change: 2 new at once, then 2 (20% of 12) at a time"),
        pytest.param(3, 3, id="small-service: 20% rounds down to 0, so 1 at a time"),
        pytest.param(5, 5, id="five: 1 at a time"),
    ],
)
def test_a_rollout_starts_new_instances_at_once_then_replaces_changed_ones_batch_by_batch(
    db: Database, before: int, after: int
) -> None:
    async def scenario(deployer: Deployer, agents: FakeAgents) -> None:
        seen = await _first_rollout(deployer, agents, db, before)
        old = dict(seen)
        deployment = await _deploy(deployer, db, after, "v2")
        size = max(1, math.floor(after * 0.2))
        done: set[int] = set()
        order: list[set[int]] = []
        while done != set(range(1, after + 1)):
            push, batch = await _next_batch(agents, seen)
            order.append(batch)
            web = {n: i for (s, n), i in push.instances.items() if s == "web"}
            assert all(web[n].runs_desired for n in done), "the batch before runs its new containers first"
            untouched = set(range(1, before + 1)) - done - batch
            assert all(web[n].desired_hash == old[n] for n in untouched), (
                "later batches keep their old config"
            )
            done |= batch
            await agents.look_since_last_push()  # it checks on this batch ...
            assert agents.nothing_pushed(), "... and goes on only once the batch runs"
            await agents.report("web", batch)
        new = set(range(before + 1, after + 1))
        expected_first = [new] if new else []
        assert order[: len(expected_first)] == expected_first
        replaced = order[len(expected_first) :]
        assert [len(b) for b in replaced] == [min(size, before - i * size) for i in range(len(replaced))]
        assert set().union(*replaced) == set(range(1, before + 1))
        await deployer.wait_finished(deployment)
        assert _deployment(db, deployment).state == "success"

    _run(db, scenario)


def test_a_deployment_succeeds_only_once_every_instance_runs(db: Database) -> None:
    async def scenario(deployer: Deployer, agents: FakeAgents) -> None:
        deployment = await _deploy(deployer, db, 3, "v1")
        await _next_batch(agents, {})
        await agents.report("web", [1, 2])
        agents.forget_looks()
        await agents.next_look()  # the deployer looked again with web-3 still on its way
        await agents.report("web", [3], state="exited", exit_code=1)
        await deployer.wait_finished(deployment)
        view = _deployment(db, deployment)
        assert view.state == "error"
        (line,) = (view.message or "").splitlines()
        assert line.startswith("s/web-3 on n") and line.endswith(": exited with code 1")

    _run(db, scenario)


def test_unchanged_instances_count_too(db: Database) -> None:
    """A redeploy that changes nothing still fails while an instance does not run."""

    async def scenario(deployer: Deployer, agents: FakeAgents) -> None:
        await _first_rollout(deployer, agents, db, 3)
        await agents.report("web", [2], state="exited", exit_code=137)
        again = await _deploy(deployer, db, 3, "v1")
        await _pushed_to(agents, "web", 2)  # the deployment asks its node again ...
        await agents.report("web", [2], state="exited", exit_code=137)  # ... which retries: exits again
        await deployer.wait_finished(again)
        view = _deployment(db, again)
        assert view.state == "error"
        assert [line.split(": ", 1)[1] for line in (view.message or "").splitlines()] == [
            "exited with code 137"
        ]
        assert (view.message or "").startswith("s/web-2 on n")

        await agents.report("web", [2])
        healthy = await _deploy(deployer, db, 3, "v1")
        await deployer.wait_finished(healthy)
        assert _deployment(db, healthy).state == "success"

    _run(db, scenario)


def test_a_newer_deployment_supersedes_a_running_one(db: Database) -> None:
    async def scenario(deployer: Deployer, agents: FakeAgents) -> None:
        first = await _deploy(deployer, db, 3, "v1")
        await _next_batch(agents, {})
        await agents.report("web", [1, 2])
        second = await _deploy(deployer, db, 3, "v1")
        await deployer.wait_finished(first)
        superseded = _deployment(db, first)
        assert (superseded.state, superseded.message) == ("error", SUPERSEDED)
        assert superseded.superseded_by == second

        # the newer one takes web-3 over as it is (unchanged) and succeeds once it runs
        await agents.report("web", [3])
        await deployer.wait_finished(second)
        assert _deployment(db, second).state == "success"

    _run(db, scenario)


async def _pushed_to(agents: FakeAgents, service: str, number: int) -> None:
    """Return after the next push that reaches the node of this instance."""
    node = agents.snapshot()[(service, number)].node_id
    while node not in (await agents.next_push()).node_ids:
        pass


def test_an_instance_whose_node_goes_offline_mid_batch_is_waited_for_not_settled(db: Database) -> None:
    async def scenario(deployer: Deployer, agents: FakeAgents) -> None:
        deployment = await _deploy(deployer, db, 2, "v1")
        push, _ = await _next_batch(agents, {})
        gone = push.instances[("web", 2)].node_id
        assert gone is not None
        agents.connected.discard(gone)
        await agents.report("web", [1])
        agents.forget_looks()
        await agents.next_look()
        await agents.next_look()  # it looked again, web-2's node still away: still running
        assert _deployment(db, deployment).state == "running"
        agents.connected.add(gone)
        await agents.report("web", [2])
        await deployer.wait_finished(deployment)
        assert _deployment(db, deployment).state == "success"

    _run(db, scenario)


def test_a_failure_reported_before_the_deployment_is_not_its_outcome(db: Database) -> None:
    """An instance failed (a missing image, say); the user fixes that and deploys again at once:
    the old error is no answer, the deployment waits for the agent's report after its push."""

    async def scenario(deployer: Deployer, agents: FakeAgents) -> None:
        first = await _deploy(deployer, db, 1, "v1")
        await _next_batch(agents, {})
        await agents.report("web", [1], state="error")
        await deployer.wait_finished(first)
        assert _deployment(db, first).state == "error"
        again = await _deploy(deployer, db, 1, "v1")
        await _pushed_to(agents, "web", 1)
        agents.forget_looks()
        await agents.next_look()
        await agents.next_look()
        assert _deployment(db, again).state == "running", "the old error decided nothing"
        await agents.report("web", [1])  # the agent retried at once: it runs now
        await deployer.wait_finished(again)
        view = _deployment(db, again)
        assert (view.state, view.message) == ("success", None)

    _run(db, scenario)


def test_a_node_away_during_an_upgrade_has_its_instances_moved_to_online_nodes_in_batches(
    db: Database,
) -> None:
    """Stateless instances on a node that is away are replaced on the nodes that are there, in
    the same batches as the rest; none is placed on the away node and the deployment does not
    wait for it (its agent drops the old containers when it is back)."""

    async def scenario(deployer: Deployer, agents: FakeAgents) -> None:
        seen = await _first_rollout(deployer, agents, db, 10)
        away = agents.snapshot()[("web", 1)].node_id
        assert away is not None
        on_away = {n for (s, n), i in agents.snapshot().items() if s == "web" and i.node_id == away}
        assert on_away
        agents.connected.discard(away)
        deployment = await _deploy(deployer, db, 10, "v2")
        rolled: set[int] = set()
        while rolled != set(range(1, 11)):
            push, batch = await _next_batch(agents, seen)
            assert len(batch) <= 2, batch
            assert all(push.instances[("web", n)].node_id != away for n in batch), "placed where it can run"
            rolled |= batch
            await agents.report("web", batch)
        await deployer.wait_finished(deployment)
        assert _deployment(db, deployment).state == "success"
        placed = agents.snapshot()
        assert all(placed[("web", n)].node_id != away for n in on_away)

    _run(db, scenario)


@pytest.mark.parametrize("restart", [False, True], ids=["same-master", "master-restarted-meanwhile"])
def test_instances_pinned_to_an_away_node_keep_their_container_and_roll_in_batches_once_it_is_back(
    db: Database, restart: bool
) -> None:
    """An upgrade planned while a node is away: the instances its volume instances pin there are
    reported pending and keep the container they have (were their new config recorded, the node
    would converge them all at once on its return); the rest roll on. Once the node is back (the
    hub says so), they are deployed again and rolled in batches. A master started meanwhile
    knows them from the store."""
    with db.session() as session:
        create_volume(session, GRID, name="data", scope="instance", driver="local")
    away = "node-2"

    async def main() -> None:
        wakeups = Wakeups()
        agents = FakeAgents(db, wakeups, GRID, ["node-1", away])  # 5 instances each
        deployer = Deployer(db, agents, wakeups)
        await deployer.start()
        try:
            seen = await _first_rollout(deployer, agents, db, 10, data=True)
            v1 = dict(seen)
            on_away = {n for (s, n), i in agents.snapshot().items() if s == "web" and i.node_id == away}
            assert len(on_away) == 5
            agents.connected.discard(away)
            deployment = await _deploy(deployer, db, 10, "v2", data=True)
            rolled: set[int] = set()
            while rolled != set(range(1, 11)) - on_away:
                _, batch = await _next_batch(agents, seen)
                assert len(batch) <= 2 and not batch & on_away, batch
                rolled |= batch
                await agents.report("web", batch)
            await deployer.wait_finished(deployment)
            view = _deployment(db, deployment)
            lines = (view.message or "").splitlines()
            assert view.state == "error"
            assert sorted(int(line.split(":")[0].rsplit("-", 1)[1]) for line in lines) == sorted(on_away)
            assert all("lives on node n2, which is offline" in line for line in lines), lines
            held = agents.snapshot()
            for n in on_away:
                assert (held[("web", n)].state, held[("web", n)].node_id) == ("pending", away)
                assert held[("web", n)].desired_hash == v1[n], "its container keeps the old config"
            if restart:
                await deployer.stop()
                wakeups = Wakeups()
                agents = FakeAgents(db, wakeups, GRID, ["node-1"])
                deployer = Deployer(db, agents, wakeups, resume_grace=0)
                await deployer.start()

            agents.connected.add(away)
            await agents.report("web", on_away)  # back: its agent reports the old containers running
            deployer.nodes_changed()  # and the hub tells the deployer
            back: set[int] = set()
            while back != on_away:
                push, batch = await _next_batch(agents, seen)
                web = {n: i for (s, n), i in push.instances.items() if s == "web"}
                assert len(batch) <= 2 and batch <= on_away, batch
                assert all(web[n].runs_desired for n in set(range(1, 11)) - batch), "one batch at a time"
                back |= batch
                await agents.report("web", batch)
            with db.session() as session:
                latest = recent_deployments(session, get_grid_row(session, GRID), 1)[0].id
            await deployer.wait_finished(latest)
            assert _deployment(db, latest).state == "success"
            assert all(i.runs_desired and i.desired_hash != v1[n] for (_, n), i in agents.snapshot().items())
        finally:
            await deployer.stop()

    asyncio.run(main())


def test_a_stopped_deployer_leaves_its_rollout_running_and_the_next_resumes_it_batch_by_batch(
    db: Database,
) -> None:
    async def main() -> None:
        wakeups = Wakeups()
        agents = FakeAgents(db, wakeups, GRID, NODES)
        deployer = Deployer(db, agents, wakeups)
        seen = await _first_rollout(deployer, agents, db, 10)
        v1 = dict(seen)
        deployment = await _deploy(deployer, db, 10, "v2")
        _, in_flight = await _next_batch(agents, seen)
        await agents.report("web", in_flight)
        _, in_flight = await _next_batch(agents, seen)  # the second batch is on its way ...
        await deployer.stop()  # ... when the master stops
        assert _deployment(db, deployment).state == "running"

        wakeups = Wakeups()
        agents = FakeAgents(db, wakeups, GRID, NODES)
        resumed = Deployer(db, agents, wakeups, resume_grace=0)
        await resumed.start()
        try:
            await agents.report("web", in_flight)  # the batch in flight runs ...
            done = {n for n in range(1, 11) if agents.snapshot()[("web", n)].desired_hash != v1[n]}
            assert in_flight <= done
            while len(done) < 10:
                push, batch = await _next_batch(agents, seen)
                web = {n: i for (s, n), i in push.instances.items() if s == "web"}
                assert all(web[n].runs_desired for n in done), "... before the next batch is touched"
                assert len(batch) <= 2
                done |= batch
                await agents.report("web", batch)
            await resumed.wait_finished(deployment)
            assert _deployment(db, deployment).state == "success"
        finally:
            await resumed.stop()

    asyncio.run(main())


def test_an_instance_waiting_for_a_node_that_comes_while_its_deployment_rolls_is_placed_after_it(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """One deployment of web (placed, rolling) and pinned (``node==n2``, n2 away: waiting for a
    node). n2 comes back while web's batch runs; the rescheduler leaves pinned to its rolling
    deployment, whose plan predates n2's return; once that ends, pinned is placed on n2 without
    another change of nodes."""
    web = ServiceSpec(name="web", image="busybox:local", command="sleep 3600")
    pinned = ServiceSpec(
        name="pinned",
        image="busybox:local",
        command="sleep 3600",
        affinity=(AffinityRule("node", True, "n2"),),
    )
    stack = stack_to_dict(StackSpec(name="s", services=(web, pinned)))
    caplog.set_level(logging.DEBUG, logger="moorage.master.deployer")

    async def main() -> None:
        wakeups = Wakeups()
        agents = FakeAgents(db, wakeups, GRID, ["node-1"])
        deployer = Deployer(db, agents, wakeups)
        await deployer.start()
        try:
            with db.session() as session:
                change = install_stack(session, GRID, stack, "", None)
            first = await deployer.deploy(GRID, change.service_ids, f"{GRID}/s")
            _, batch = await _next_batch(agents, {})
            assert batch == {1}
            waiting = agents.snapshot()[("pinned", 1)]
            assert (waiting.node_id, waiting.state) == (None, "pending")

            agents.connected.add("node-2")
            deployer.nodes_changed()  # the hub: node-2's agent is back
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            while "waits for a node; deployment" not in caplog.text:  # the rescheduler left it to `first`
                assert loop.time() < deadline, "the rescheduler never looked at pinned"
                await asyncio.sleep(0.01)
            await agents.report("web", [1])
            await deployer.wait_finished(first)
            assert "pinned-1" in (_deployment(db, first).message or "")  # it ended with pinned waiting

            while agents.snapshot()[("pinned", 1)].node_id is None:
                await agents.next_push()  # no other change of nodes: its end placed it
            assert agents.snapshot()[("pinned", 1)].node_id == "node-2"
        finally:
            await deployer.stop()

    asyncio.run(main())

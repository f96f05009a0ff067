"""Watching one service on real engines while faults happen, and judging what was seen.

``EngineWatch`` lists the service's running containers on every node's engine (one list call per
engine, the engines in parallel) every ``period`` seconds in a background thread and keeps every
sample. ``judge`` then reads the samples as a user checking the engines would:

    running   instance numbers with a running container on a node that is not *away*; a node is
              away while a fault has taken it (an ``Away`` window: cut off, or its engine
              power-cut) and whenever its engine does not answer
    excused   the instances that ran on an away node in the last sample before its window began;
              each stays excused until it runs again on a node that is not away. They are down
              because of the fault, not because of the rollout
    promise   ``len(running | excused) >= promise`` at every sample
    duplicate two running containers of one instance number, at one sample, on nodes that are not
              away nor *unfenced* (``duplicates``); the same across every engine that answered,
              away ones included (``duplicates_anywhere``: a cut node's containers run on
              unseen). An ``unfenced`` window is a node whose stale containers may run on
              although the master moved their instances elsewhere (no fencing yet)
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import docker
from docker.errors import DockerException
from requests.exceptions import RequestException

from moorage.model import docker_labels
from tests.support.waiting import StopWaiting, wait_until

__all__ = ["Away", "EngineWatch", "Running", "Sample", "Verdict", "judge"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Running:
    node: str
    instance: int
    config_hash: str


@dataclass(frozen=True)
class Sample:
    at: float  # time.monotonic() when the look began
    running: tuple[Running, ...]
    unanswered: frozenset[str] = frozenset()  # engines that did not answer this time

    def instances(
        self, nodes: Iterable[str] | None = None, keep: Callable[[Running], bool] | None = None
    ) -> Counter[int]:
        """How many running containers each instance number has (on these nodes; those kept)."""
        wanted = set(nodes) if nodes is not None else None
        return Counter(
            r.instance
            for r in self.running
            if (wanted is None or r.node in wanted) and (keep is None or keep(r))
        )

    def placement(self) -> dict[int, str]:
        """instance number -> the node it runs on (one of them, if it runs on several)."""
        return {r.instance: r.node for r in self.running}

    def configs(self) -> dict[int, set[str]]:
        """instance number -> the config hashes of its running containers."""
        found: dict[int, set[str]] = {}
        for r in self.running:
            found.setdefault(r.instance, set()).add(r.config_hash)
        return found


@dataclass
class Away:
    """A node a fault took away: from ``start`` until ``end`` (None: not back yet), monotonic s."""

    node: str
    start: float
    end: float | None = None

    def covers(self, at: float) -> bool:
        return self.start <= at and (self.end is None or at < self.end)


@dataclass
class Verdict:
    samples: int = 0
    min_running: int | None = None  # fewest instances running on nodes not away
    min_counted: int | None = None  # fewest running or excused
    breaches: list[str] = field(default_factory=list)  # samples under the promise
    duplicates: list[str] = field(default_factory=list)  # samples with duplicates on nodes not away
    duplicates_anywhere: list[str] = field(default_factory=list)  # ... on any engine that answered


def judge(
    samples: Iterable[Sample], aways: Iterable[Away], promise: int, unfenced: Iterable[Away] = ()
) -> Verdict:
    """Read the samples (in time order) against the batch promise and for duplicates."""
    windows, stale = list(aways), list(unfenced)
    begun: set[int] = set()  # indexes of the windows whose start has passed
    excused: set[int] = set()
    previous: Sample | None = None
    verdict = Verdict()
    for sample in samples:
        for index, window in enumerate(windows):
            if index not in begun and window.start <= sample.at:
                begun.add(index)
                if previous is not None:
                    excused |= set(previous.instances([window.node]))
        away = {w.node for w in windows if w.covers(sample.at)} | sample.unanswered
        seen = {r.node for r in sample.running} - away
        running = set(sample.instances(seen))
        excused -= running
        counted = running | excused
        verdict.samples += 1
        verdict.min_running = _least(verdict.min_running, len(running))
        verdict.min_counted = _least(verdict.min_counted, len(counted))
        when = f"at {sample.at:.2f}"
        if len(counted) < promise:
            verdict.breaches.append(
                f"{when}: {len(running)} running ({sorted(running)}) + excused {sorted(excused)} < {promise}"
                f"; away: {sorted(away)}"
            )
        reachable = seen - {w.node for w in stale if w.covers(sample.at)}
        doubled = sorted(n for n, c in sample.instances(reachable).items() if c > 1)
        if doubled:
            verdict.duplicates.append(f"{when}: instances {doubled} run twice: {_where(sample, doubled)}")
        doubled = sorted(n for n, c in sample.instances().items() if c > 1)
        if doubled:
            verdict.duplicates_anywhere.append(
                f"{when}: instances {doubled} run twice: {_where(sample, doubled)}"
            )
        previous = sample
    return verdict


def _least(known: int | None, value: int) -> int:
    return value if known is None else min(known, value)


def _where(sample: Sample, numbers: list[int]) -> str:
    return ", ".join(
        f"{n} on {'+'.join(sorted(r.node for r in sample.running if r.instance == n))}" for n in numbers
    )


class EngineWatch:
    """Samples the running containers of ``service_id`` on every engine until closed."""

    def __init__(self, hosts: Mapping[str, str], service_id: str, period: float = 0.15) -> None:
        self.service_id = service_id
        self.period = period
        self.samples: list[Sample] = []
        self._clients = {node: docker.APIClient(base_url=host, timeout=3) for node, host in hosts.items()}
        self._pool = ThreadPoolExecutor(max_workers=len(self._clients), thread_name_prefix="engine-watch")
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="engine-watch", daemon=True)
        self.error: BaseException | None = None

    def __enter__(self) -> EngineWatch:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._pool.shutdown(wait=True)
        for client in self._clients.values():
            client.close()

    def _look(self, node: str) -> list[Running] | None:
        try:
            listed = self._clients[node].containers(
                filters={"label": f"{docker_labels.SERVICE_ID}={self.service_id}", "status": "running"}
            )
        except (DockerException, RequestException, OSError):
            return None  # the engine is down (power cut) or did not answer in time
        return [
            Running(node, int(c["Labels"][docker_labels.INSTANCE]), c["Labels"][docker_labels.CONFIG_HASH])
            for c in listed
        ]

    def _sample(self) -> Sample:
        at = time.monotonic()
        looks = dict(zip(self._clients, self._pool.map(self._look, self._clients), strict=True))
        running = tuple(r for found in looks.values() if found is not None for r in found)
        return Sample(at, running, frozenset(node for node, found in looks.items() if found is None))

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                begun = time.monotonic()
                sample = self._sample()
                with self._lock:
                    self.samples.append(sample)
                # pace the sampling, not a wait for a condition: stop() ends it at once
                self._stop.wait(max(0.0, self.period - (time.monotonic() - begun)))
        except BaseException as err:  # shown by wait_for and by the test, never lost in a thread
            self.error = err
            raise

    def latest(self, after: float) -> Sample | None:
        """The newest sample taken after ``after`` (monotonic s), if there is one yet."""
        with self._lock:
            sample = self.samples[-1] if self.samples else None
        return sample if sample is not None and sample.at > after else None

    def wait_for(self, check: Callable[[Sample], T | None], timeout: float, what: str) -> T:
        """Wait until a fresh sample passes ``check``; its answer."""
        since = time.monotonic()

        def fresh() -> T | None:
            if self.error is not None:
                raise StopWaiting(f"the engine watch stopped: {self.error!r}")
            sample = self.latest(since)
            return check(sample) if sample is not None else None

        return wait_until(fresh, timeout, what, interval=self.period / 2)

    def snapshot(self) -> list[Sample]:
        with self._lock:
            return list(self.samples)

"""How the fault tests read what they sampled on the engines (``tests/support/engine_watch.judge``):
the batch promise with instances on an away node excused until they run again, and duplicates
on the nodes that are not away (nor unfenced) and on every engine."""

from __future__ import annotations

from tests.support.engine_watch import Away, Running, Sample, judge

HOMES = {1: "a", 2: "a", 3: "b", 4: "b", 5: "c"}  # instance -> node


def _sample(at: float, *numbers: int, extra: tuple[Running, ...] = (), unanswered: str = "") -> Sample:
    running = tuple(Running(HOMES[n], n, "h") for n in numbers) + extra
    return Sample(at, running, frozenset(unanswered.split()) if unanswered else frozenset())


def test_all_running_keeps_the_promise() -> None:
    verdict = judge([_sample(0, 1, 2, 3, 4, 5), _sample(1, 1, 2, 3, 4, 5)], [], promise=4)
    assert (verdict.samples, verdict.min_running, verdict.min_counted) == (2, 5, 5)
    assert verdict.breaches == verdict.duplicates == verdict.duplicates_anywhere == []


def test_a_batch_too_many_down_breaks_the_promise() -> None:
    verdict = judge([_sample(0, 1, 2, 3, 4, 5), _sample(1, 1, 2, 3)], [], promise=4)
    assert len(verdict.breaches) == 1 and verdict.breaches[0].startswith("at 1.00: 3 running ([1, 2, 3])")


def test_instances_of_an_away_node_are_excused_until_they_run_again() -> None:
    samples = [
        _sample(0, 1, 2, 3, 4, 5),
        _sample(1, 1, 2, 3, 4, 5),  # node a cut: its containers still run, but do not count
        _sample(2, 3, 4, 5, unanswered="a"),  # power cut: its engine does not answer
        _sample(3, 3, 4, 5),  # back (window over), its instances not running yet: still excused
        _sample(4, 1, 3, 4, 5),  # 1 runs again (no longer excused), 2 is still excused
        _sample(5, 1, 3, 5),  # the rollout stops 4: 3 running and 2 excused keep the promise
    ]
    verdict = judge(samples, [Away("a", start=0.5, end=2.5)], promise=4)
    assert verdict.min_running == 3 and verdict.min_counted == 4
    assert verdict.breaches == []
    after = judge([*samples, _sample(6, 1, 2, 3), _sample(7, 1, 3)], [Away("a", 0.5, 2.5)], promise=4)
    assert [b.split(":")[0] for b in after.breaches] == ["at 6.00", "at 7.00"], (
        "2 ran again at 6 (so it is no longer excused) while 4 and 5 were down"
    )


def test_duplicates_on_reachable_nodes_and_anywhere() -> None:
    stale = Running("c", 1, "old")  # instance 1's old container on node c
    samples = [
        _sample(0, 1, 2, 3, 4, 5, extra=(stale,)),  # c is away: a duplicate only anywhere
        _sample(1, 1, 2, 3, 4, 5, extra=(stale,)),  # c back but unfenced: still not counted
        _sample(2, 1, 2, 3, 4, 5, extra=(stale,)),  # c fenced again: a duplicate
    ]
    verdict = judge(samples, [Away("c", -1, 0.5)], promise=4, unfenced=[Away("c", -1, 1.5)])
    assert [d.split(":")[0] for d in verdict.duplicates] == ["at 2.00"]
    assert verdict.duplicates[0].endswith("instances [1] run twice: 1 on a+c")
    assert len(verdict.duplicates_anywhere) == 3

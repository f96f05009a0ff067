"""The test suite's wait helper: retries a condition that is not checkable yet, but lets a check
that says "this can never hold" (a dead process) through at once."""

from __future__ import annotations

import pytest

from tests.support.waiting import StopWaiting, wait_until


def test_a_condition_not_checkable_yet_is_retried_until_it_holds() -> None:
    calls: list[int] = []

    def check() -> int | None:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("not listening yet")
        return len(calls)

    assert wait_until(check, timeout=30, what="the third call", interval=0) == 3


def test_a_check_that_gives_up_ends_the_wait_at_the_first_call() -> None:
    calls: list[int] = []

    def check() -> bool:
        calls.append(1)
        raise StopWaiting("master exited with 1: boom")

    with pytest.raises(StopWaiting, match="master exited with 1: boom"):
        wait_until(check, timeout=30, what="a master that died", interval=0)
    assert calls == [1]


def test_timeout_names_what_was_awaited_and_the_last_error() -> None:
    def check() -> None:
        raise ConnectionError("refused")

    with pytest.raises(
        AssertionError, match=r"waiting for the ping; last error: ConnectionError\('refused'\)"
    ):
        wait_until(check, timeout=0, what="the ping", interval=0)

"""When the hub calls a node silent: only time the master was listening counts against it."""

from __future__ import annotations

from typing import Any

from moorage.master.hub import AgentConnection, credit_stall, silent

TIMEOUT = 3.0


def _conn(name: str, last_seen: float, *, handling: bool = False) -> AgentConnection:
    websocket: Any = None  # never used by these rules
    return AgentConnection(
        node_id=name, name=name, grid="g", websocket=websocket, last_seen=last_seen, handling=handling
    )


def _silent_names(conns: list[AgentConnection], now: float) -> list[str]:
    return [c.name for c in silent(conns, now - TIMEOUT)]


def test_a_node_not_heard_for_longer_than_the_timeout_is_silent() -> None:
    conns = [_conn("quiet", 100.0), _conn("talking", 102.5)]
    assert _silent_names(conns, 104.0) == ["quiet"]


def test_a_node_whose_message_is_still_being_handled_is_not_silent() -> None:
    busy = _conn("busy", 100.0, handling=True)  # its status report waits on a slow store
    assert _silent_names([busy], 110.0) == []
    busy.handling = False
    assert _silent_names([busy], 110.0) == ["busy"]  # done and still nothing after it


def test_a_stall_of_the_master_is_no_nodes_silence() -> None:
    recent, long_gone = _conn("recent", 100.0), _conn("gone", 90.0)
    credit_stall([recent, long_gone], 5.0)  # the master's loop did not run from 100.5 to 105.5
    assert _silent_names([recent, long_gone], 105.5) == ["gone"]

"""Notices between masters: what is sent decodes to the same notice; anything else on the
channel (another program's payload, a bad field, an unknown kind) is ignored, not a crash."""

from __future__ import annotations

import pytest

from moorage.master.peer_notices import (
    MAX_PAYLOAD,
    AnsweredNotice,
    DeployNotice,
    DesiredNotice,
    NodesNotice,
    StatusNotice,
    decode_notice,
    desired_notices,
    encode_notice,
)

ORIGIN = "a" * 32


@pytest.mark.parametrize(
    "notice",
    [
        DesiredNotice(origin=ORIGIN, nodes=["node-0001", "node-0002"], ask=7),
        AnsweredNotice(origin=ORIGIN, to="b" * 32, node="node-0001", ask=7),
        StatusNotice(origin=ORIGIN),
        NodesNotice(origin=ORIGIN),
        DeployNotice(origin=ORIGIN),
    ],
    ids=lambda n: n.kind,
)
def test_a_notice_decodes_to_what_was_sent(notice: object) -> None:
    assert decode_notice(encode_notice(notice)) == notice  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "payload",
    [
        "",
        "not json",
        "[1, 2]",
        '{"kind": "desired"}',
        '{"kind": "reboot", "origin": "x"}',
        '{"kind": "desired", "origin": "x", "nodes": "node-1", "ask": 1}',
        '{"kind": "desired", "origin": "x", "nodes": ["n"], "ask": -1}',
        '{"kind": "answered", "origin": "x", "node": "n", "ask": 1}',
        '{"kind": "status", "origin": ""}',
        '{"kind": "status", "origin": "' + "x" * 33 + '"}',
        '{"kind": "desired", "origin": "x", "ask": 1, "nodes": [' + ",".join(['"n"'] * 101) + "]}",
    ],
    ids=[
        "empty",
        "not-json",
        "not-an-object",
        "no-origin",
        "unknown-kind",
        "nodes-not-a-list",
        "negative-ask",
        "answered-without-to",
        "empty-origin",
        "long-origin",
        "too-many-nodes",
    ],
)
def test_what_is_not_a_notice_is_ignored(payload: str) -> None:
    assert decode_notice(payload) is None


def test_many_nodes_go_in_notices_that_postgresql_takes() -> None:
    nodes = [f"{n:064d}" for n in range(250)]  # node ids of the longest kind
    notices = desired_notices(ORIGIN, [*nodes, *nodes[:10]], ask=3)
    assert [len(n.nodes) for n in notices] == [100, 100, 50]
    assert sorted(node for n in notices for node in n.nodes) == nodes
    assert all(len(encode_notice(n).encode()) <= MAX_PAYLOAD < 8000 for n in notices)
    assert [decode_notice(encode_notice(n)) for n in notices] == notices

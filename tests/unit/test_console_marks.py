"""How the console's grid map marks a copy of data on a node (``copy_mark``)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from moorage.master.console.pages import copy_mark
from moorage.store.volume_map import HeldVolume


def _held(state: str, volume: str | None = "data", error: str | None = None) -> HeldVolume:
    return HeldVolume(
        node="node-1",
        name="shop.db.data-1",
        volume=volume,
        scope="instance",
        driver="local",
        zone=None,
        state=state,
        error=error,
        updated_at=datetime.now(UTC),
    )


@pytest.mark.parametrize(
    ("held", "used_by", "mark"),
    [
        (_held("present"), ("shop/db-1",), "in-use"),
        (_held("present"), (), "unused"),
        (_held("pending"), ("shop/db-1",), "pending"),
        (_held("missing"), ("shop/db-1",), "missing"),
        (_held("error", error="disk full"), (), "error"),
        (_held("removing", volume=None), (), "retired"),
        (_held("present", volume=None), (), "retired"),  # its volume is gone, whatever the node says
    ],
)
def test_marks(held: HeldVolume, used_by: tuple[str, ...], mark: str) -> None:
    assert copy_mark(held, used_by)[0] == mark


def test_the_words_name_the_users_and_the_error() -> None:
    assert copy_mark(_held("present"), ("shop/db-1", "shop/db-2"))[1] == "in use by shop/db-1, shop/db-2"
    assert copy_mark(_held("error", error="disk full"), ())[1] == "error: disk full"

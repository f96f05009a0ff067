"""A request body that does not arrive in time is a 408, one past the size limit a 413, counted
as it is read (``master/request_limits._limited``): the pace check with a short deadline and a
client that sends the first part of a body and then nothing."""

from __future__ import annotations

import anyio
import pytest
from starlette.exceptions import HTTPException
from starlette.types import Message

from moorage.master import request_limits


def _trickle(*parts: bytes) -> tuple[list[bytes], object]:
    """A receive that hands out ``parts`` (more to come after each), then never sends again."""
    sent: list[bytes] = []

    async def receive() -> Message:
        if len(sent) < len(parts):
            sent.append(parts[len(sent)])
            return {"type": "http.request", "body": sent[-1], "more_body": True}
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    return sent, receive


def test_a_body_that_stops_arriving_is_a_408_at_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(request_limits, "BODY_TIMEOUT", 0.3)
    sent, receive = _trickle(b'{"name": ', b'"abc')
    limited = request_limits._limited(receive)  # type: ignore[arg-type]

    async def read_all() -> float:
        start = anyio.current_time()
        with anyio.fail_after(10), pytest.raises(HTTPException) as raised:
            while True:
                await limited()
        assert raised.value.status_code == 408
        assert "did not arrive within" in raised.value.detail
        return anyio.current_time() - start

    waited = anyio.run(read_all)
    assert sent == [b'{"name": ', b'"abc'], "what came was read"
    assert 0.3 <= waited < 5, f"answered after {waited:.2f} s, the deadline being 0.3 s from the first read"


def test_a_body_past_the_limit_is_a_413_as_soon_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(request_limits, "MAX_BODY_BYTES", 10)
    sent, receive = _trickle(b"12345", b"67890", b"1", b"never read")
    limited = request_limits._limited(receive)  # type: ignore[arg-type]

    async def read_all() -> None:
        with pytest.raises(HTTPException) as raised:
            while True:
                await limited()
        assert raised.value.status_code == 413

    anyio.run(read_all)
    assert sent == [b"12345", b"67890", b"1"], "stopped at the first byte over the limit"

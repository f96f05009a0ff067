"""Stream data as binary WebSocket frames (protocol.py, "data frames"): what goes in comes out, and
a malformed frame is refused with what is wrong with it."""

from __future__ import annotations

import pytest

from moorage.protocol import (
    VOLUME_CHUNK_BYTES,
    StreamInput,
    StreamOutput,
    agent_data_frame,
    data_frame,
    master_data_frame,
)


@pytest.mark.parametrize("fd", [1, 2])
def test_output_goes_whole_with_its_stream_and_fd(fd: int) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB, every byte value
    frame = data_frame(StreamOutput(stream="a1B2", fd=fd, data=data))  # type: ignore[arg-type]
    assert agent_data_frame(frame) == StreamOutput(stream="a1B2", fd=fd, data=data)  # type: ignore[arg-type]
    assert len(frame) == len(data) + 7  # no encoding: a few bytes of header


def test_input_goes_whole_and_its_eof_stays_json() -> None:
    frame = data_frame(StreamInput(stream="s" * 32, data=b"\x00tar\xff"))
    assert master_data_frame(frame) == StreamInput(stream="s" * 32, data=b"\x00tar\xff")
    assert master_data_frame(data_frame(StreamInput(stream="x", data=b""))).data == b""
    with pytest.raises(ValueError, match="eof goes as JSON"):
        data_frame(StreamInput(stream="x", eof=True))


@pytest.mark.parametrize(
    ("frame", "problem"),
    [
        (b"", "must be stream output"),
        (b"I\x01a\x01data", "must be stream output"),  # input is the master's
        (b"O", "too short"),
        (b"O\x00\x01data", "stream id"),
        (b"O\x21" + b"a" * 33 + b"\x01", "stream id"),
        (b"O\x02a-\x01data", "stream id"),
        (b"O\x05ab", "stream id"),  # shorter than it says
        (b"O\x01a", "fd"),
        (b"O\x01a\x03data", "fd"),
        (b"O\x01a\x01" + b"x" * (VOLUME_CHUNK_BYTES + 1), f"more than {VOLUME_CHUNK_BYTES} bytes"),
    ],
)
def test_a_bad_agent_frame_says_what_is_wrong(frame: bytes, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        agent_data_frame(frame)


def test_a_bad_master_frame_says_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="must be stream input"):
        master_data_frame(b"O\x01a\x01data")
    with pytest.raises(ValueError, match="stream id"):
        master_data_frame(b"I\x00")
    with pytest.raises(ValueError, match=f"more than {VOLUME_CHUNK_BYTES} bytes"):
        master_data_frame(b"I\x01a" + b"x" * (VOLUME_CHUNK_BYTES + 1))

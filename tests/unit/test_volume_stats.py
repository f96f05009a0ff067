"""The quick check of a move's second pass (``agent/volume_stats.py``): a listing is read exactly
or not at all, and a manifest entry is trusted unread only when stat shows it could not have
changed since before it was read. The same on a real engine: tests/e2e/test_e2e_volume_move.py."""

from __future__ import annotations

import stat

import pytest

from moorage.agent import volume_stats
from moorage.agent.volume_manifest import Entry
from moorage.agent.volume_stats import Listing, PathStat

FILE = stat.S_IFREG | 0o644
DIR = stat.S_IFDIR | 0o755
CLOCK = 1_000_000


def _line(inode: int, size: int, mtime: int, ctime: int, mode: int, name: str) -> str:
    return f"{inode} {size} {mtime} {ctime} {mode:x} {name}"


def test_a_listing_names_paths_as_manifests_do_and_leaves_sockets_out() -> None:
    lines = "\n".join(
        [
            _line(2, 4096, 10, 11, DIR, "/v"),
            _line(3, 5, 12, 13, FILE, "/v/a file with  spaces"),
            _line(4, 0, 14, 15, stat.S_IFSOCK | 0o755, "/v/redis.sock"),
            _line(5, 4096, 16, 17, DIR, "/v/sub"),
        ]
    )
    listing = volume_stats.parse(f"{CLOCK}\n", lines + "\n", "/v")
    assert listing.clock == CLOCK
    assert listing.paths == {
        ".": PathStat(2, 4096, 10, 11, DIR),
        "a file with  spaces": PathStat(3, 5, 12, 13, FILE),
        "sub": PathStat(5, 4096, 16, 17, DIR),
    }


@pytest.mark.parametrize(
    ("clock", "lines", "said"),
    [
        ("soon", _line(2, 1, 1, 1, DIR, "/v"), "not a clock"),
        (str(CLOCK), _line(3, 1, 1, 1, FILE, "/v/a"), "has no /v"),
        (str(CLOCK), f"{_line(2, 1, 1, 1, DIR, '/v')}\n{_line(3, 1, 1, 1, FILE, '/v/a')}\n"
         f"{_line(3, 1, 1, 1, FILE, '/v/a')}", "listed twice"),
        (str(CLOCK), f"{_line(2, 1, 1, 1, DIR, '/v')}\n{_line(3, 1, 1, 1, FILE, '/elsewhere/a')}", "not a path under"),
        (str(CLOCK), f"{_line(2, 1, 1, 1, DIR, '/v')}\nname\n", "not a stat line"),
        (str(CLOCK), f"{_line(2, 1, 1, 1, DIR, '/v')}\n1 2 x 4 81a4 /v/a", "not a stat line"),
    ],
    ids=["clock", "no-root", "twice", "outside", "a-name-cut-by-a-newline", "not-numbers"],
)  # fmt: skip
def test_a_listing_that_is_not_exact_is_refused(clock: str, lines: str, said: str) -> None:
    with pytest.raises(ValueError, match=said):
        volume_stats.parse(clock, lines, "/v")


def _file(size: int = 5, mtime: int = 100) -> Entry:
    return Entry("file", 0, 0, 0o644, size, "ab" * 32, mtime)


def _listing(**paths: PathStat) -> Listing:
    return Listing(CLOCK, {".": PathStat(2, 4096, 50, 50, DIR), **paths})


SETTLED = CLOCK - volume_stats.SLACK_SECONDS  # the newest ctime still trusted


@pytest.mark.parametrize(
    ("now", "trusted"),
    [
        (PathStat(3, 5, 100, SETTLED, FILE), True),
        (PathStat(3, 5, 100, SETTLED + 1, FILE), False),  # changed too near the listing: same second
        (PathStat(9, 5, 100, SETTLED, FILE), False),  # another inode (renamed over it)
        (PathStat(3, 6, 100, SETTLED, FILE), False),
        (PathStat(3, 5, 101, SETTLED, FILE), False),
        (PathStat(3, 5, 100, SETTLED - 1, FILE), False),  # ctime differs from the listing's
        (PathStat(3, 5, 100, SETTLED, stat.S_IFLNK | 0o777), False),
    ],
    ids=["settled", "too-recent", "inode", "size", "mtime", "ctime", "kind"],
)
def test_a_path_is_trusted_only_when_stat_shows_it_unchanged_since_before_the_read(
    now: PathStat, trusted: bool
) -> None:
    before = _listing(a=PathStat(3, 5, 100, now.ctime if now.ctime != SETTLED - 1 else SETTLED, FILE))
    manifest = {".": Entry("dir", 0, 0, 0o755), "a": _file()}
    kept = volume_stats.unchanged(before, manifest, _listing(a=now))
    assert ("a" in kept) is trusted
    assert "." in kept


def test_what_stat_shows_unchanged_must_also_agree_with_the_manifest() -> None:
    """A manifest entry that disagrees with stat (size, mtime, kind), a path the manifest or the
    first listing lacks: read again."""
    settled = PathStat(3, 5, 100, SETTLED, FILE)
    both = _listing(a=settled, b=settled, c=settled, d=settled)
    manifest = {
        "a": _file(),
        "b": _file(size=4),
        "c": _file(mtime=99),
        "d": Entry("dir", 0, 0, 0o755),
    }
    new = PathStat(7, 5, 100, SETTLED, FILE)
    now = Listing(CLOCK, {**both.paths, "e": new})
    kept, again = volume_stats.trusted_manifest(
        _listing(a=settled, b=settled, c=settled, d=settled), manifest, now
    )
    assert set(kept) == {"a"}
    assert again == [".", "b", "c", "d", "e"]


def test_a_listing_goes_over_the_wire_and_back() -> None:
    listing = _listing(a=PathStat(3, 5, 100, 90, FILE))
    assert volume_stats.from_json(volume_stats.to_json(listing)) == (listing, None)
    assert volume_stats.from_json(volume_stats.to_json(None, "a newline")) == (None, "a newline")
    with pytest.raises(ValueError, match="not a listing"):
        volume_stats.from_json(b'{"clock": 1, "paths": {"a": [1, 2]}}')

"""The manifest of a volume's data (agent/volume_manifest.py): the same for a tree and its tar
stream, equal after a real busybox ``tar c | tar x`` copy, changed by any change a user would see,
and ``changes`` makes a stale copy equal to its source."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from moorage.agent import volume_manifest as vm

BUSYBOX = shutil.which("busybox")
needs_busybox = pytest.mark.skipif(BUSYBOX is None, reason="busybox is not installed")
ROOT = os.geteuid() == 0

NAMES = st.sampled_from(["a", "b", "c", "d e", "-x", "ü"])


@dataclass(frozen=True)
class Item:
    path: str
    kind: str  # file | dir | symlink | hardlink
    data: bytes = b""
    mode: int = 0o644
    uid: int = 0
    mtime: int = 1_600_000_000
    target: str = ""


@st.composite
def trees(draw: st.DrawFn) -> list[Item]:
    items: list[Item] = []
    taken: dict[str, str] = {}
    for _ in range(draw(st.integers(0, 12))):
        parts = draw(st.lists(NAMES, min_size=1, max_size=3))
        path = "/".join(parts)
        parents = ["/".join(parts[:i]) for i in range(1, len(parts))]
        if path in taken or any(taken.get(p, "dir") != "dir" for p in parents):
            continue
        if any(k.startswith(path + "/") for k in taken):
            continue
        kind = draw(st.sampled_from(["file", "file", "dir", "symlink", "hardlink"]))
        files = [i for i in items if i.kind == "file"]
        if kind == "hardlink" and not files:
            kind = "file"
        for p in parents:
            taken[p] = "dir"
        taken[path] = kind
        items.append(
            Item(
                path=path,
                kind=kind,
                data=draw(st.binary(max_size=3000)),
                mode=draw(st.sampled_from([0o644, 0o600, 0o755, 0o700, 0o4755])),
                uid=draw(st.sampled_from([0, 1234])) if ROOT else os.geteuid(),
                mtime=draw(st.integers(1_000_000_000, 1_900_000_000)),
                target=draw(st.sampled_from(["a", "../b", "/etc/passwd", "no such"]))
                if kind == "symlink"
                else (draw(st.sampled_from(files)).path if kind == "hardlink" else ""),
            )
        )
    return items


def build(root: Path, items: list[Item]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for item in items:
        full = root / item.path
        full.parent.mkdir(parents=True, exist_ok=True)
        if item.kind == "file":
            full.write_bytes(item.data)
            os.chmod(full, item.mode)
            os.utime(full, (item.mtime, item.mtime))
        elif item.kind == "dir":
            full.mkdir(exist_ok=True)
            os.chmod(full, item.mode)
        elif item.kind == "symlink":
            full.symlink_to(item.target)
        else:
            os.link(root / item.target, full)
        if ROOT:
            os.lchown(full, item.uid, item.uid)


def python_tar(root: Path, arcname: str = ".", fmt: int = tarfile.GNU_FORMAT) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        tar.add(root, arcname=arcname)
    return out.getvalue()


def busybox(*args: str, stdin: bytes | None = None) -> bytes:
    assert BUSYBOX is not None
    return subprocess.run([BUSYBOX, *args], input=stdin, capture_output=True, check=True).stdout


def busybox_copy(source: Path, target: Path, paths: list[str] | None = None) -> None:
    target.mkdir(parents=True, exist_ok=True)
    if paths is None:
        archive = busybox("tar", "c", "-C", str(source), ".")
    else:
        archive = busybox("tar", "c", "--no-recursion", "-C", str(source), *(f"./{p}" for p in paths))
    busybox("tar", "x", "--numeric-owner", "-C", str(target), stdin=archive)


TREE_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@TREE_SETTINGS
@given(trees())
def test_a_tree_and_its_tar_stream_have_the_same_manifest(items: list[Item]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp, "v")
        build(root, items)
        tree = vm.of_tree(root)
        assert vm.of_tar(io.BytesIO(python_tar(root))) == tree
        # as the engine's archive API gives a folder: PAX, every member under the folder's name
        assert vm.of_tar(io.BytesIO(python_tar(root, "v", tarfile.PAX_FORMAT)), root="v") == tree
        if BUSYBOX is not None:
            assert vm.of_tar(io.BytesIO(busybox("tar", "c", "-C", str(root), "."))) == tree


@needs_busybox
@TREE_SETTINGS
@given(trees())
def test_a_busybox_tar_copy_has_an_equal_manifest(items: list[Item]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        build(Path(tmp, "src"), items)
        busybox_copy(Path(tmp, "src"), Path(tmp, "dst"))
        source, copy = vm.of_tree(Path(tmp, "src")), vm.of_tree(Path(tmp, "dst"))
        assert vm.first_difference(source, copy) is None


@needs_busybox
@TREE_SETTINGS
@given(trees(), trees())
def test_changes_make_a_stale_copy_equal(old: list[Item], new: list[Item]) -> None:
    """The copy holds ``old``; the source became ``new``: deleting ``remove`` and sending ``send``
    (as the move's second pass does, with busybox) makes them equal."""
    with tempfile.TemporaryDirectory() as tmp:
        source, copy = Path(tmp, "src"), Path(tmp, "dst")
        build(source, new)
        build(Path(tmp, "old"), old)
        busybox_copy(Path(tmp, "old"), copy)
        stale = vm.of_tree(copy)
        todo = vm.changes(vm.of_tree(source), stale)
        for path in todo.remove:
            target = copy / path
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink()
        if todo.send:
            busybox_copy(source, copy, todo.send)
        assert vm.first_difference(vm.of_tree(source), vm.of_tree(copy)) is None
        assert vm.changes(vm.of_tree(source), vm.of_tree(copy)).empty
        # what the move verifies: the stale read-back, with only the sent paths read again
        sent = (
            vm.of_tar(
                io.BytesIO(
                    busybox("tar", "c", "--no-recursion", "-C", str(copy), *(f"./{p}" for p in todo.send))
                )
            )
            if todo.send
            else {}
        )
        assert vm.after_changes(stale, todo, sent) == vm.of_tree(copy)


def test_every_visible_change_is_a_difference(tmp_path: Path) -> None:
    items = [
        Item("f", "file", b"hello", mtime=1_700_000_000),
        Item("d", "dir"),
        Item("d/g", "file", b"x" * 10),
        Item("d/h", "hardlink", target="d/g"),
        Item("s", "symlink", target="f"),
        Item("e", "dir"),
    ]
    build(tmp_path / "v", items)
    before = vm.of_tree(tmp_path / "v")
    assert before["d/g"].link == before["d/h"].link == "d/g"
    assert before["e"].kind == "dir"
    root = tmp_path / "v"

    def after(change: object) -> str | None:
        return vm.first_difference(before, vm.of_tree(root))

    (root / "f").write_bytes(b"hellO")
    os.utime(root / "f", (1_700_000_000, 1_700_000_000))
    assert after(None) == "f"
    (root / "f").write_bytes(b"hello")
    os.utime(root / "f", (1_700_000_001, 1_700_000_001))
    assert after(None) == "f"
    os.utime(root / "f", (1_700_000_000, 1_700_000_000))
    os.chmod(root / "f", 0o600)
    assert after(None) == "f"
    os.chmod(root / "f", 0o644)
    assert after(None) is None
    (root / "d/h").unlink()
    shutil.copy2(root / "d/g", root / "d/h")  # same content, no longer one file
    assert after(None) == "d/g"
    (root / "d/h").unlink()
    os.link(root / "d/g", root / "d/h")
    (root / "s").unlink()
    (root / "s").symlink_to("g")
    assert after(None) == "s"
    (root / "s").unlink()
    (root / "s").symlink_to("f")
    (root / "e").rmdir()
    assert after(None) == "e"
    (root / "e").mkdir()
    if ROOT:
        os.chown(root / "d/g", 1234, 1234)
        assert after(None) == "d/g"


def test_json_round_trip_and_summary(tmp_path: Path) -> None:
    build(tmp_path / "v", [Item("a", "file", b"1234"), Item("b", "hardlink", target="a"), Item("c", "dir")])
    manifest = vm.of_tree(tmp_path / "v")
    assert vm.from_json(vm.to_json(manifest)) == manifest
    assert vm.summary(manifest) == (4, 4)  # the pair's data once; ., a, b, c
    with pytest.raises(ValueError, match="not a manifest"):
        vm.from_json(b'[["x", "weird", 0, 0, null, 0, null, null, null, null, null]]')


def test_an_archive_with_a_member_outside_its_root_is_refused(tmp_path: Path) -> None:
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "f").write_bytes(b"data")
    with pytest.raises(ValueError, match="member w is not under v"):
        vm.of_tar(io.BytesIO(python_tar(tmp_path / "v", "w", tarfile.PAX_FORMAT)), root="v")

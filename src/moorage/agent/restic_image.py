"""The helper image backup jobs run restic in, made on the node from the node's own restic.

No registry is needed: the image is the node's restic binary, the libraries ``ldd`` lists for it
(Debian's restic is linked against glibc) and a static busybox (for the shell steps of a restore,
and the ``tar`` that ``volume_data.py`` reads manifests with: this image is its helper image here), imported into the engine as ``moorage-restic:<digest>``. The digest
covers every file, so a node whose restic was upgraded makes a new image.
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

from moorage.agent.engine import DockerJobs
from moorage.errors import MoorageError

__all__ = ["REPOSITORY", "helper_image"]

REPOSITORY = "moorage-restic"
BUSYBOX_APPLETS = (
    "sh",
    "tar",
    "find",
    "mv",
    "rm",
    "mkdir",
    "cat",
    "du",
    "ls",
    "sleep",
    "touch",
    "dd",
    "stat",
)
_LIB = re.compile(r"(/\S+)")


def _files(restic: str, busybox: str | None) -> dict[str, Path]:
    """Image path -> host file."""
    files = {"/usr/bin/restic": Path(restic)}
    listed = subprocess.run(["ldd", restic], capture_output=True, text=True, check=False).stdout
    for line in listed.splitlines():
        for found in _LIB.findall(line):
            if Path(found).is_file():
                files[found] = Path(found)
    if busybox:
        files["/bin/busybox"] = Path(busybox)
    return files


def _tarball(files: dict[str, Path], with_busybox: bool) -> tuple[bytes, str]:
    digest = hashlib.sha256()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for folder in ("tmp", "cache", "volume", "run", "repo"):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if folder == "tmp" else 0o755
            tar.addfile(info)
        for target, source in sorted(files.items()):
            data = source.resolve().read_bytes()
            digest.update(target.encode() + hashlib.sha256(data).digest())
            info = tarfile.TarInfo(target.lstrip("/"))
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
        if with_busybox:
            for applet in BUSYBOX_APPLETS:
                link = tarfile.TarInfo(f"bin/{applet}")
                link.type, link.linkname = tarfile.SYMTYPE, "/bin/busybox"
                tar.addfile(link)
    return buffer.getvalue(), digest.hexdigest()[:12]


_made: dict[tuple[tuple[str, float], ...], tuple[bytes, str]] = {}


def helper_image(jobs: DockerJobs, restic: str | None = None) -> str:
    """The helper image's reference on this engine, imported first if the engine lacks it."""
    binary = restic or shutil.which("restic")
    if not binary:
        raise MoorageError(
            "restic is not installed on this node: install the distribution's restic package "
            "(scripts/setup does) or start the agent with --restic PATH"
        )
    busybox = shutil.which("busybox")
    files = _files(binary, busybox)
    key = tuple(sorted((path, source.stat().st_mtime) for path, source in files.items()))
    if key not in _made:
        _made.clear()
        _made[key] = _tarball(files, busybox is not None)
    tarball, tag = _made[key]
    image = f"{REPOSITORY}:{tag}"
    if not jobs.image_present(image):
        jobs.import_image(tarball, REPOSITORY, tag)
    return image

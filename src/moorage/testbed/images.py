"""The two images every testbed node gets, built from this host's binaries without a registry.

``busybox:local`` is the static busybox with a link for each of its applets; ``redis:local`` adds
redis-server, redis-cli and the shared libraries ``ldd`` lists. Each is a root file system
tarball that ``docker import`` turns into an image. Tarballs are cached by a key made of
everything that goes into them, so a second ``testbed up`` builds nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

from moorage.testbed.errors import TestbedError

__all__ = [
    "BUSYBOX",
    "REDIS",
    "ImageTarball",
    "build_busybox",
    "build_images",
    "build_redis",
    "import_images",
]

BUSYBOX = "busybox:local"
REDIS = "redis:local"
LABEL = "moorage.testbed.image"
RECIPE = "2"  # change when the recipe below changes, so cached tarballs are rebuilt
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Like the official redis image, which turns protected mode off at build time: otherwise a
# redis-server without a password refuses every client that is not on its loopback.
REDIS_WRAPPER = b'#!/bin/sh\nexec /usr/bin/redis-server "$@" --protected-mode no\n'


@dataclass(frozen=True)
class Entry:
    """One member of a root file system tarball."""

    path: str  # relative, no leading slash
    kind: str  # "dir", "file" or "symlink"
    mode: int = 0o755
    source: Path | None = None  # file content from here...
    data: bytes | None = None  # ...or from here
    target: str = ""  # for symlinks

    def content(self) -> bytes:
        if self.data is not None:
            return self.data
        return self.source.read_bytes() if self.source is not None else b""

    def key(self) -> str:
        content = hashlib.sha256(self.content()).hexdigest() if self.kind == "file" else ""
        return f"{self.kind} {self.path} {self.mode:o} {self.target} {content}"


@dataclass(frozen=True)
class ImageTarball:
    """A built root file system tarball and how to import it."""

    ref: str  # repository:tag
    tarball: Path
    key: str  # content key, also set as a label on the image
    changes: tuple[str, ...]  # Dockerfile instructions given to `docker import`


def _which(program: str) -> Path:
    found = shutil.which(program)
    if found is None:
        raise TestbedError(
            f"{program} not found on this host; install it with "
            "`apt-get install -y busybox-static redis-server`."
        )
    return Path(found).resolve()


def _base_entries() -> list[Entry]:
    busybox = _which("busybox")
    listing = subprocess.run([str(busybox), "--list-full"], capture_output=True, text=True, check=True)
    entries = [
        Entry(d, "dir")
        for d in (
            "bin",
            "sbin",
            "usr",
            "usr/bin",
            "usr/sbin",
            "usr/local",
            "usr/local/bin",
            "etc",
            "var",
            "home",
            "proc",
            "sys",
            "dev",
            "run",
            "mnt",
        )
    ]
    entries += [Entry("tmp", "dir", 0o1777), Entry("var/tmp", "dir", 0o1777), Entry("root", "dir", 0o700)]
    entries.append(Entry("bin/busybox", "file", 0o755, source=busybox))
    for applet in sorted(set(listing.stdout.split())):
        if applet != "bin/busybox":
            entries.append(Entry(applet, "symlink", 0o777, target="/bin/busybox"))
    entries.append(
        Entry(
            "etc/passwd",
            "file",
            0o644,
            data=b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        )
    )
    entries.append(Entry("etc/group", "file", 0o644, data=b"root:x:0:\nnogroup:x:65534:\n"))
    return entries


def _libraries(binaries: Iterable[Path]) -> list[str]:
    """Absolute paths of the shared libraries (and loader) the binaries need, as ``ldd`` lists them."""
    found: set[str] = set()
    for binary in binaries:
        out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            match = re.search(r"(?:=>\s*)?(/\S+)\s+\(0x", line)
            if match:
                found.add(match.group(1))
    return sorted(found)


def _directories_of(paths: Iterable[str], known: set[str]) -> list[Entry]:
    dirs: list[Entry] = []
    for p in paths:
        parts = p.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in known:
                known.add(d)
                dirs.append(Entry(d, "dir"))
    return dirs


def _build(
    cache: Path, name: str, ref: str, entries: Sequence[Entry], changes: Sequence[str]
) -> ImageTarball:
    digest = hashlib.sha256()
    digest.update(f"recipe {RECIPE}\n".encode())
    for entry in entries:
        digest.update(entry.key().encode() + b"\n")
    digest.update(json.dumps(list(changes)).encode())
    key = digest.hexdigest()[:16]
    tarball = cache / f"{name}-{key}.tar"
    all_changes = (*changes, f"ENV {PATH_ENV}", f"LABEL {LABEL}={key}")
    if tarball.is_file():
        return ImageTarball(ref, tarball, key, all_changes)
    cache.mkdir(parents=True, exist_ok=True)
    partial = cache / f".{tarball.name}.{os.getpid()}"
    with tarfile.open(partial, "w", format=tarfile.GNU_FORMAT) as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry.path)
            info.mode, info.uid, info.gid, info.mtime = entry.mode, 0, 0, 0
            info.uname = info.gname = "root"
            if entry.kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif entry.kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, entry.target
                tar.addfile(info)
            else:
                data = entry.content()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    partial.replace(tarball)
    for stale in cache.glob(f"{name}-*.tar"):  # builds of an older recipe or other binaries
        if stale != tarball:
            stale.unlink(missing_ok=True)
    return ImageTarball(ref, tarball, key, all_changes)


def build_busybox(cache: Path) -> ImageTarball:
    """``busybox:local``: static busybox and its applets, default command ``sh``."""
    return _build(cache, "busybox", BUSYBOX, _base_entries(), ('CMD ["sh"]',))


def build_redis(cache: Path) -> ImageTarball:
    """``redis:local``: busybox plus redis-server and redis-cli; workdir and data in ``/data``."""
    server, cli = _which("redis-server"), _which("redis-cli")
    entries = _base_entries()
    known = {e.path for e in entries}
    libraries = _libraries([server, cli])
    entries += _directories_of(libraries, known)
    entries += [Entry(lib.lstrip("/"), "file", 0o755, source=Path(lib).resolve()) for lib in libraries]
    # The real binary under its own name: redis picks its mode from argv[0], and Debian's
    # /usr/bin/redis-server is a link to redis-check-rdb.
    entries.append(Entry("usr/bin/redis-server", "file", 0o755, source=server))
    entries.append(Entry("usr/bin/redis-cli", "file", 0o755, source=cli))
    entries.append(Entry("usr/local/bin/redis-server", "file", 0o755, data=REDIS_WRAPPER))
    entries.append(Entry("data", "dir", 0o755))
    return _build(cache, "redis", REDIS, entries, ('CMD ["redis-server"]', "WORKDIR /data", "EXPOSE 6379"))


def build_images(cache: Path) -> tuple[ImageTarball, ...]:
    """Both testbed images, built into ``cache`` unless already there."""
    return (build_busybox(cache), build_redis(cache))


def import_images(docker_host: str, images: Sequence[ImageTarball], *, timeout: float = 120.0) -> list[str]:
    """Import each image into the engine at ``docker_host`` unless it already has that very build.

    Returns the refs that were imported (not the ones already present).
    """
    client = docker.DockerClient(base_url=docker_host, timeout=int(timeout))
    imported = []
    try:
        for image in images:
            try:
                present = client.images.get(image.ref)
                if present.labels.get(LABEL) == image.key:
                    continue
            except docker.errors.ImageNotFound:
                pass
            except (docker.errors.DockerException, OSError) as exc:  # no engine there, most often
                raise TestbedError(f"The Docker Engine at {docker_host} did not answer: {exc}") from exc
            repository, tag = image.ref.rsplit(":", 1)
            try:
                result = client.api.import_image(
                    src=str(image.tarball), repository=repository, tag=tag, changes=list(image.changes)
                )
            except docker.errors.DockerException as exc:
                raise TestbedError(
                    f"Importing {image.tarball} as {image.ref} into {docker_host} failed: {exc}"
                ) from exc
            for line in str(result).splitlines():
                if '"error"' in line:
                    raise TestbedError(f"Importing {image.ref} into {docker_host} failed: {line}")
            imported.append(image.ref)
    finally:
        client.close()
    return imported

"""restic on this host, as a subprocess: the repository's password goes in its environment
(``RESTIC_PASSWORD``), never on its command line, and never into an error this module raises.

``Repository.ensure()`` is ``moorage grid backup-repo set``: open the repository at exactly that
URL, or initialise one there when there is none.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from moorage.errors import Conflict, MoorageError
from moorage.model.backup import RetentionPolicy

__all__ = ["Repository", "ResticError", "restic_binary", "restic_version"]

TIMEOUT = 600.0


class ResticError(MoorageError):
    """restic refused or failed; the message is restic's own, with the password scrubbed."""

    status = 409


def restic_binary(explicit: str | None = None) -> str:
    """The restic to run: ``explicit``, else ``MOORAGE_RESTIC``, else the one on PATH."""
    found = explicit or os.environ.get("MOORAGE_RESTIC") or shutil.which("restic")
    if not found:
        raise ResticError(
            "restic is not installed on this host: install the distribution's restic package "
            "(scripts/setup does), or set MOORAGE_RESTIC to its path"
        )
    return found


def restic_version(binary: str | None = None) -> str:
    out = subprocess.run(
        [restic_binary(binary), "version"], capture_output=True, text=True, timeout=30, check=False
    )
    return out.stdout.strip()


@dataclass(frozen=True)
class Repository:
    url: str
    password: str
    binary: str | None = None

    def __repr__(self) -> str:  # never the password
        return f"Repository({self.url!r})"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RESTIC_")}
        env["RESTIC_REPOSITORY"] = self.url
        env["RESTIC_PASSWORD"] = self.password
        return env

    def _scrub(self, text: str) -> str:
        return text.replace(self.password, "********") if self.password else text

    def run(self, args: Sequence[str], *, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                [restic_binary(self.binary), "--no-cache", *args],
                env=self._env(),
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as err:
            raise ResticError(f"restic {args[0]} on {self.url} took more than {timeout:.0f}s") from err

    def _fail(self, what: str, done: subprocess.CompletedProcess[str]) -> ResticError:
        lines = [line for line in self._scrub(done.stderr).splitlines() if line.strip()]
        said = "; ".join(lines[-3:]) or f"exit status {done.returncode}"
        return ResticError(f"restic {what} on {self.url} failed: {said}")

    def json(self, args: Sequence[str], what: str) -> Any:
        done = self.run([*args, "--json"])
        if done.returncode != 0:
            raise self._fail(what, done)
        try:
            return json.loads(done.stdout or "null")
        except ValueError as err:
            raise ResticError(f"restic {what} printed no JSON: {self._scrub(done.stdout)[:200]}") from err

    def ensure(self) -> bool:
        """Open the repository, or initialise it when there is none; True when it was initialised."""
        opened = self.run(["cat", "config"], timeout=120)
        if opened.returncode == 0:
            return False
        said = opened.stderr
        if "wrong password" in said or "no key found" in said:
            raise Conflict(
                f"The repository at {self.url} exists but does not open with this password; give the "
                "password it was made with (--password-file F)"
            )
        if "config file" not in said and "does not exist" not in said and "Is there a repository" not in said:
            raise self._fail("cat config", opened)
        made = self.run(["init"], timeout=120)
        if made.returncode != 0:
            raise self._fail("init", made)
        return True

    def snapshots(self, tags: Sequence[str] = ()) -> list[dict[str, Any]]:
        args = ["snapshots"] + (["--tag", ",".join(tags)] if tags else [])
        found = self.json(args, "snapshots")
        return [s for s in found or [] if isinstance(s, dict)]

    def forget(self, tags: Sequence[str], policy: RetentionPolicy, *, dry_run: bool) -> list[dict[str, Any]]:
        """``restic forget`` of the snapshots with all ``tags``, grouped by host and path (one
        group per volume instance); each group's ``keep`` and ``remove``. Prunes unless dry."""
        args = ["forget", "--tag", ",".join(tags), "--group-by", "host,paths", *policy.restic_args()]
        args += ["--dry-run"] if dry_run else ["--prune"]
        done = self.run([*args, "--json"])
        if done.returncode != 0:
            raise self._fail("forget", done)
        first = next((line for line in done.stdout.splitlines() if line.startswith("[")), "[]")
        groups = json.loads(first)
        return [g for g in groups or [] if isinstance(g, dict)]

    def stats(self, mode: str = "raw-data") -> dict[str, Any]:
        found = self.json(["stats", "--mode", mode], "stats")
        return found if isinstance(found, dict) else {}

    def check(self, *, read_data: bool = False) -> None:
        done = self.run(["check", *(["--read-data"] if read_data else [])], timeout=3600)
        if done.returncode != 0:
            raise self._fail("check", done)

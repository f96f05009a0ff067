"""What the hub tells the deployer, without either naming the other: agents reported a change of
status (rollouts waiting on it look again), or nodes changed (instances waiting for a node may
place). ``app.py`` gives the hub ``status_changed`` and ``nodes_changed`` when it builds it, and
the deployer waits on the same object."""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["Wakeups"]


class Wakeups:
    def __init__(self) -> None:
        self._status = asyncio.Condition()
        self._status_count = 0  # reports so far: a waiter that saw n misses none after n
        self._nodes = asyncio.Event()

    @property
    def status_count(self) -> int:
        return self._status_count

    async def status_changed(self) -> None:
        """Agents reported something (an instance's state, a node gone)."""
        async with self._status:
            self._status_count += 1
            self._status.notify_all()

    async def wait_status(self, seen: int, timeout: float) -> None:
        """Return once a report came after ``seen`` reports (at once if one did), or after ``timeout``."""
        async with self._status:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._status.wait_for(lambda: self._status_count != seen), timeout)

    def nodes_changed(self) -> None:
        """A node came online or changed, or a Docker volume finished being removed."""
        self._nodes.set()

    async def wait_nodes(self) -> None:
        """Return once nodes changed since the last return (at once if they did)."""
        await self._nodes.wait()

    def clear_nodes(self) -> None:
        self._nodes.clear()

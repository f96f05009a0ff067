"""Which volume instances no instance would use: the state ``unused`` (since when), both ways.

A volume instance is **claimed** when an instance would use its Docker volume:

- instance scope: its Docker name is the one instance *n* of a service that mounts its volume
  gets (``model.volume.docker_volume_name``), for every *n* the service has an instance row for
  or its definition asks for (1..instances; a daemon: its rows);
- stack and grid scope (one Docker volume per node): an instance of a service that mounts it
  (of its stack, for stack scope) is on its node, or is not placed yet.

``refresh_use`` is the one place that decides: an unclaimed volume instance becomes ``unused``
(``unused_since`` now; kept when it already was), a claimed ``unused`` one ``pending`` again (its
agent confirms the Docker volume, or makes it again; a placement does the same,
``store/placements.py``). It is called where instances or mounts go away (a scale-down's
removals, a service or stack removed or upgraded) and where they come back (a stack installed
or upgraded); ``volume prune`` calls it before it removes anything, so what it removes is
unclaimed as the store is then. ``removing`` volume instances (and any other state another
feature owns) are left as they are.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Text, cast, or_, select, update
from sqlalchemy.orm import Session

from moorage.errors import NotFound
from moorage.model.stack import DeployStrategy
from moorage.model.states import VolumeInstanceState
from moorage.model.volume import VolumeScope, docker_volume_name
from moorage.store.grids import get_grid_row
from moorage.store.placements import chunks
from moorage.store.services import stored_service
from moorage.store.tables import InstanceRow, NodeRow, ServiceRow, VolumeInstanceRow, VolumeRow
from moorage.store.volumes import named_pattern

__all__ = ["CLAIMABLE", "Pruned", "UseChange", "prune_unused", "refresh_use"]

CLAIMABLE = frozenset(
    {
        VolumeInstanceState.PENDING,
        VolumeInstanceState.PRESENT,
        VolumeInstanceState.MISSING,
        VolumeInstanceState.ERROR,
        VolumeInstanceState.UNUSED,
    }
)
"""The states whose volume instances this module moves between used and ``unused``."""

_PRUNABLE = frozenset({VolumeInstanceState.UNUSED, VolumeInstanceState.MISSING})
"""Unused (``unused_since`` set) in these states: ``volume prune`` removes them (a missing one's
row goes once its agent confirms the engine has no such Docker volume)."""


@dataclass(frozen=True, slots=True)
class _Claims:
    names: set[str]  # instance scope: Docker names some instance would mount
    on_nodes: set[tuple[str, str]]  # stack/grid scope: (Docker name, node id) in use there
    anywhere: set[str]  # stack/grid scope: Docker names an instance not placed yet would mount


@dataclass(frozen=True, slots=True)
class UseChange:
    """What ``refresh_use`` found: volume instances that became unused, and those used again."""

    unused: list[str]
    used: list[str]


def refresh_use(session: Session, grid_id: int, volumes: Iterable[str], *, apply: bool = True) -> UseChange:
    """Mark the volume instances of these grid volumes ``unused`` or used again, as claimed
    (``apply`` False: only say what would change)."""
    names = sorted(set(volumes))
    change = UseChange([], [])
    if not names:
        return change
    defined = {
        name: (volume_id, VolumeScope(scope))
        for volume_id, name, scope in session.execute(
            select(VolumeRow.id, VolumeRow.name, VolumeRow.scope).where(
                VolumeRow.grid_id == grid_id, VolumeRow.name.in_(names)
            )
        ).tuples()
    }
    if not defined:
        return change
    claims = _claims(session, grid_id, defined)
    reclaimed: list[str] = []
    ids = {volume_id: scope for volume_id, scope in defined.values()}
    for part in chunks(sorted(ids)):
        rows = session.execute(
            select(
                VolumeInstanceRow.id,
                VolumeInstanceRow.volume_id,
                VolumeInstanceRow.node_id,
                VolumeInstanceRow.name,
                VolumeInstanceRow.state,
                VolumeInstanceRow.unused_since,
            ).where(VolumeInstanceRow.volume_id.in_(part), VolumeInstanceRow.state.in_(sorted(CLAIMABLE)))
        ).tuples()
        for row_id, volume_id, node_id, docker_name, state, unused_since in rows:
            assert volume_id is not None
            if ids[volume_id] is VolumeScope.INSTANCE:
                claimed = docker_name in claims.names
            else:
                claimed = (docker_name, node_id) in claims.on_nodes or docker_name in claims.anywhere
            if state == VolumeInstanceState.MISSING and unused_since is not None:
                if claimed:
                    reclaimed.append(row_id)  # missing, as before it was unused: a deploy makes it again
                continue  # unused, and its Docker volume gone (store/instances.apply_docker_volumes)
            if not claimed and state != VolumeInstanceState.UNUSED:
                change.unused.append(row_id)
            elif claimed and state == VolumeInstanceState.UNUSED:
                change.used.append(row_id)
    if apply:
        _apply_use(session, change, reclaimed)
    return change


def _apply_use(session: Session, change: UseChange, reclaimed: list[str]) -> None:
    """Write what ``refresh_use`` found (``reclaimed``: missing unused ones some instance claims)."""
    now = datetime.now(UTC)
    for ids_part in chunks(change.unused):
        session.execute(
            update(VolumeInstanceRow)
            .where(VolumeInstanceRow.id.in_(ids_part))
            .values(state=VolumeInstanceState.UNUSED, unused_since=now, error=None, updated_at=now)
        )
    for ids_part in chunks(change.used):
        session.execute(
            update(VolumeInstanceRow)
            .where(VolumeInstanceRow.id.in_(ids_part))
            .values(state=VolumeInstanceState.PENDING, unused_since=None, error=None, updated_at=now)
        )
    for ids_part in chunks(reclaimed):
        session.execute(
            update(VolumeInstanceRow)
            .where(VolumeInstanceRow.id.in_(ids_part))
            .values(unused_since=None, updated_at=now)
        )


@dataclass(frozen=True, slots=True)
class Pruned:
    """One volume instance ``volume prune`` removes (or, dry, would remove)."""

    volume: str
    name: str  # the Docker volume
    node: str
    unused_since: datetime


def prune_unused(
    session: Session,
    grid: str,
    *,
    volume: str | None = None,
    older_than: timedelta | None = None,
    dry_run: bool = False,
) -> tuple[list[Pruned], set[str]]:
    """Remove the ``unused`` volume instances of the grid (of ``volume``), unused for longer than
    ``older_than``: each becomes ``removing`` (it lets go of its volume, as ``volume rm`` does),
    and its agent deletes the Docker volume, only if it is labelled as that volume instance.
    Claims are read afresh first, so nothing an instance would use is removed. Returns what it
    removes (or would, ``dry_run``: then nothing changes) and the nodes to tell."""
    grid_row = get_grid_row(session, grid)
    query = select(VolumeRow.id, VolumeRow.name).where(VolumeRow.grid_id == grid_row.id)
    if volume is not None:
        query = query.where(VolumeRow.name == volume)
    volumes = dict(session.execute(query).tuples().all())
    if volume is not None and not volumes:
        raise NotFound(f"Volume {volume} not found")
    now = datetime.now(UTC)
    change = refresh_use(session, grid_row.id, volumes.values(), apply=not dry_run)
    cutoff = now - older_than if older_than is not None else None
    found: list[tuple[str, Pruned, str]] = []
    for part in chunks(sorted(volumes)):
        rows = session.execute(
            select(
                VolumeInstanceRow.id,
                VolumeInstanceRow.volume_id,
                VolumeInstanceRow.name,
                NodeRow.name,
                NodeRow.id,
                VolumeInstanceRow.state,
                VolumeInstanceRow.unused_since,
            )
            .join(NodeRow, NodeRow.id == VolumeInstanceRow.node_id)
            .where(VolumeInstanceRow.volume_id.in_(part), VolumeInstanceRow.state.in_(sorted(CLAIMABLE)))
        ).tuples()
        newly = set(change.unused)
        for row_id, volume_id, docker_name, node, node_id, state, since in rows:
            if row_id in newly:
                since = now  # (dry: what applying would have recorded)
            elif state not in _PRUNABLE or row_id in change.used or since is None:
                continue
            if cutoff is not None and since > cutoff:
                continue
            assert volume_id is not None
            found.append((row_id, Pruned(volumes[volume_id], docker_name, node, since), node_id))
    found.sort(key=lambda item: (item[1].volume, item[1].name, item[1].node))
    if dry_run or not found:
        return [pruned for _, pruned, _ in found], set()
    for ids_part in chunks([row_id for row_id, _, _ in found]):
        session.execute(
            update(VolumeInstanceRow)
            .where(VolumeInstanceRow.id.in_(ids_part), VolumeInstanceRow.state.in_(sorted(_PRUNABLE)))
            .values(state=VolumeInstanceState.REMOVING, volume_id=None, updated_at=now)
        )
    return [pruned for _, pruned, _ in found], {node_id for _, _, node_id in found}


def _claims(session: Session, grid_id: int, defined: dict[str, tuple[int, VolumeScope]]) -> _Claims:
    """What the services of the grid that mount these volumes would use (one query for the
    services whose document mentions one of them, one for their instances)."""
    mentions = or_(*(cast(ServiceRow.spec, Text).like(named_pattern(n), escape="/") for n in defined))
    services = list(session.scalars(select(ServiceRow).where(ServiceRow.grid_id == grid_id, mentions)))
    rows: dict[int, list[tuple[int, str | None]]] = {row.id: [] for row in services}
    for part in chunks(sorted(rows)):
        for service_id, number, node_id in session.execute(
            select(InstanceRow.service_id, InstanceRow.number, InstanceRow.node_id).where(
                InstanceRow.service_id.in_(part)
            )
        ).tuples():
            rows[service_id].append((number, node_id))
    claims = _Claims(set(), set(), set())
    for row in services:
        stored = stored_service(row)
        spec = stored.spec
        for volume in stored.grid_volumes:
            if volume not in defined:
                continue
            scope = defined[volume][1]
            instances = rows[row.id]
            if scope is VolumeScope.INSTANCE:
                numbers = {number for number, _ in instances}
                if spec.strategy is not DeployStrategy.DAEMON:
                    numbers |= set(range(1, spec.instances + 1))
                claims.names.update(
                    docker_volume_name(scope, volume, stored.stack, spec.name, n) for n in numbers
                )
                continue
            docker_name = docker_volume_name(scope, volume, stored.stack, spec.name, 1)
            for _, node_id in instances:
                if node_id is None:
                    claims.anywhere.add(docker_name)
                else:
                    claims.on_nodes.add((docker_name, node_id))
            if not instances and spec.instances > 0:
                claims.anywhere.add(docker_name)  # installed, not deployed yet
    return claims

"""The volumes of a stack file's top-level ``volumes:``, at install, upgrade and removal.

- **External** entries (``external: true`` / ``{name:, scope:, driver:}``) name grid volumes made
  with ``moorage volume create``: each must exist (Kontena's ``External volume X not found``) and
  have the scope and driver the stack states it expects (422, naming both values).
- **The stack's own** entries become grid volumes named ``<stack>_<alias>``
  (``model.stack.stack_volume_name``) owned by the stack (``volumes.stack``). Installing creates
  them, checked as ``volume create`` checks a volume; one that already exists is reused only when
  the stack owns it (a ``stack rm`` keeps them, still owned), else the install is refused (409).
  An upgrade (or a new install) may change a volume's labels (applied) and ``driver_opts``
  (recorded: the engine cannot change a Docker volume's options, so the nodes' volumes show as
  drifted, ``model.volume.volume_drift``), never its scope, driver or topology (409: the data in
  its Docker volumes was made for those). Its ``backup:`` schedule and retention are the file's:
  set, changed or ended (no ``backup:``) as ``moorage volume update --backup-*`` would.
- ``stack rm --volumes`` removes the stack's own volumes (``remove_own``), never external ones.

Everything runs in the caller's unit of work: a refusal stores nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from moorage.errors import Conflict, InvalidInput
from moorage.model.backup import RetentionPolicy
from moorage.model.events import EventKind
from moorage.model.node_loss import OnNodeLost
from moorage.model.stack import StackSpec, StackVolume, VolumeDecl
from moorage.store.backups import set_schedule
from moorage.store.events import NewEvent, record_events
from moorage.store.tables import GridRow, VolumeRow
from moorage.store.volumes import create_volume, remove_volume

__all__ = ["check_external", "ensure_own", "remove_own"]


def _rows(session: Session, grid_row: GridRow, names: list[str]) -> dict[str, VolumeRow]:
    if not names:
        return {}
    query = select(VolumeRow).where(VolumeRow.grid_id == grid_row.id, VolumeRow.name.in_(names))
    return {row.name: row for row in session.scalars(query)}


def check_external(session: Session, grid_row: GridRow, spec: StackSpec) -> None:
    """Every external volume exists and has the scope and driver the stack expects (422 if not)."""
    external = [decl for decl in spec.volumes if decl.external_name is not None]
    rows = _rows(session, grid_row, [decl.grid_volume(spec.name) for decl in external])
    errors: dict[str, str] = {}
    for decl in external:
        name = decl.grid_volume(spec.name)
        row = rows.get(name)
        path = f"volumes.{decl.alias}.external"
        if row is None:
            errors[path] = (
                f"External volume {name} not found; create it first with "
                f"'moorage volume create --scope SCOPE --driver DRIVER {name}'"
            )
            continue
        for field, expected, actual in (
            ("scope", decl.expected_scope, row.scope),
            ("driver", decl.expected_driver, row.driver),
        ):
            if expected is not None and expected != actual:
                errors[f"{path}.{field}"] = (
                    f"External volume {name} has {field} {actual}, but this stack expects {field} "
                    f"{expected}; use a volume with {field} {expected}, or change the stack file"
                )
    if errors:
        raise InvalidInput(errors)


def ensure_own(session: Session, grid_row: GridRow, spec: StackSpec) -> None:
    """Create the stack's own volumes that do not exist; check and update those that do."""
    own = [decl for decl in spec.volumes if decl.owned is not None]
    rows = _rows(session, grid_row, [decl.grid_volume(spec.name) for decl in own])
    refused: list[str] = []
    now = datetime.now(UTC)
    for decl in own:
        row = rows.get(decl.grid_volume(spec.name))
        if row is None:
            _create(session, grid_row, spec.name, decl)
            _backups(session, grid_row, decl.grid_volume(spec.name), decl, None, now)
        elif (problems := _refusals(spec.name, decl, row)) != []:
            refused += problems
        else:
            _update(decl, row, now)
            _backups(session, grid_row, row.name, decl, row, now)
    if refused:
        raise Conflict("; ".join(refused))


def _create(session: Session, grid_row: GridRow, stack: str, decl: VolumeDecl) -> None:
    owned = decl.owned
    assert owned is not None
    try:
        create_volume(
            session,
            grid_row.name,
            name=decl.grid_volume(stack),
            scope=owned.scope,
            driver=owned.driver,
            driver_opts=dict(owned.driver_opts),
            labels=dict(owned.labels),
            topology=owned.topology,
            on_node_lost=owned.on_node_lost,
            stack=stack,
        )
    except InvalidInput as error:  # said of the stack file's entry (the name is the stack's)
        raise InvalidInput(
            {f"volumes.{decl.alias}.{field}": m for field, m in error.errors.items()}
        ) from None
    name = decl.grid_volume(stack)
    record_events(
        session,
        NewEvent(
            grid_row.id,
            EventKind.VOLUME_CREATED,
            f"volume {name} created for stack {stack} ({owned.scope} scope, driver {owned.driver})",
            stack=stack,
            volume=name,
        ),
    )


def _refusals(stack: str, decl: VolumeDecl, row: VolumeRow) -> list[str]:
    """Why the existing volume ``row`` cannot be this stack's ``decl``; empty when it can."""
    owned = decl.owned
    assert owned is not None
    if row.stack != stack:
        owner = "made with 'moorage volume create'" if row.stack is None else f"owned by stack {row.stack}"
        return [
            f"Volume {row.name} already exists and is not stack {stack}'s ({owner}); install the "
            f"stack under another name (--name), or declare '{decl.alias}' as external: "
            f"{{name: {row.name}}} to use that volume"
        ]
    problems = []
    for field, wanted, current in (
        ("scope", owned.scope, row.scope),
        ("driver", owned.driver, row.driver),
        ("topology", owned.topology or row.topology, row.topology),
    ):
        if wanted != current:
            problems.append(
                f"Volume {row.name} of stack {stack} has {field} {current}; the stack file says "
                f"{wanted}, and its Docker volumes hold data made for {field} {current}: changing "
                f"it would leave that data behind. Keep {field}: {current}, or declare a volume "
                "under a new name and bring the data over (a volume move or a backup restore)"
            )
    return problems


def _update(decl: VolumeDecl, row: VolumeRow, now: datetime) -> None:
    owned = decl.owned
    assert owned is not None
    labels, driver_opts = dict(owned.labels), dict(owned.driver_opts)
    policy = owned.on_node_lost or OnNodeLost.WAIT.value
    if (row.labels, row.driver_opts, row.on_node_lost) != (labels, driver_opts, policy):
        row.labels = labels
        row.driver_opts = driver_opts  # the Docker volumes keep theirs: shown as drift
        row.on_node_lost = policy
        row.updated_at = now


def _backups(
    session: Session, grid_row: GridRow, name: str, decl: VolumeDecl, row: VolumeRow | None, now: datetime
) -> None:
    """Give the volume the file's backup schedule and retention, unless it has them already (a
    new schedule waits for its next time: ``store.backups.set_schedule``)."""
    owned = decl.owned
    assert owned is not None
    keep = _keep(owned)
    current = (row.backup_schedule, RetentionPolicy.of(row.backup_keep)) if row is not None else (None, None)
    if current != (owned.backup_schedule, keep):
        set_schedule(session, grid_row.name, name, owned.backup_schedule, keep, now)


def _keep(owned: StackVolume) -> RetentionPolicy | None:
    return RetentionPolicy.parse(owned.backup_keep) if owned.backup_keep is not None else None


def remove_own(session: Session, grid_row: GridRow, stack: str) -> tuple[list[str], set[str]]:
    """Remove every volume stack ``stack`` owns (``volume rm``'s rules: refused while a service
    uses one); their Docker volumes are deleted by their agents. Returns the volumes removed
    and the nodes to tell."""
    names = session.scalars(
        select(VolumeRow.name)
        .where(VolumeRow.grid_id == grid_row.id, VolumeRow.stack == stack)
        .order_by(VolumeRow.name)
    ).all()
    nodes: set[str] = set()
    for name in names:
        removed = remove_volume(session, grid_row.name, name)
        nodes |= removed
        record_events(
            session,
            NewEvent(
                grid_row.id,
                EventKind.VOLUME_REMOVED,
                f"volume {name} of stack {stack} removed with it; its Docker volumes are deleted on "
                f"{len(removed)} node(s)",
                stack=stack,
                volume=name,
            ),
        )
    return list(names), nodes

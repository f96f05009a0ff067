"""Masters repository: which master processes run on this store, the leases of once-only work,
and which master each node's agent is connected to.

Every time is the store's clock (``clock_timestamp()`` on PostgreSQL), so masters on machines
whose clocks disagree still agree on who holds a lease. A master also holds a session-level
advisory lock named after its id for as long as its leadership connection lives
(``hold_life_lock``): when the process dies, PostgreSQL drops the lock at once, and
``is_gone`` tells the others so before its heartbeats expire. A paused process keeps its
connection and its lock: it loses its lease only by the lease's expiry, and then writes nothing
(``check_lease``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, delete, func, insert, select, text, update
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.elements import ColumnElement

from moorage.model.node import NodeStatus
from moorage.store.tables import LeaseRow, MasterRow, NodeRow

__all__ = [
    "LEADER",
    "LeaseLost",
    "LeaseView",
    "MasterView",
    "acquire_lease",
    "beat",
    "check_lease",
    "hold_life_lock",
    "is_gone",
    "lease_view",
    "link_key_of",
    "list_masters",
    "mark_orphans_offline",
    "master_names",
    "nodes_per_master",
    "of_gone_masters",
    "online_nodes_of",
    "prepare_connection",
    "register_master",
    "release_lease",
    "renew_lease",
]

LEADER = "leader"  # the lease of rollouts, placing waiting instances, sweeping dead masters' nodes
LIFE_LOCK_CLASS = 0x4D4F4F52  # 'MOOR': the first key of every master's advisory life lock

Conn = Connection | Session


class LeaseLost(Exception):
    """This master no longer holds the lease it wrote under: the transaction rolls back."""


@dataclass(frozen=True, slots=True)
class MasterView:
    id: str
    name: str
    url: str
    version: str
    started_at: datetime
    seen_at: datetime


@dataclass(frozen=True, slots=True)
class LeaseView:
    holder: str | None
    epoch: int
    expires_at: datetime
    valid: bool  # held and not expired, by the store's clock now


def _pg(conn: Conn) -> bool:
    bind = conn.get_bind() if isinstance(conn, Session) else conn
    return bind.dialect.name == "postgresql"


def _now(conn: Conn) -> ColumnElement[datetime] | datetime:
    """The store's clock: ``clock_timestamp()`` on PostgreSQL (not the transaction's start)."""
    return func.clock_timestamp() if _pg(conn) else datetime.now(UTC)


def _ago(conn: Conn, seconds: float) -> ColumnElement[datetime] | datetime:
    if _pg(conn):
        return func.clock_timestamp() - timedelta(seconds=seconds)
    return datetime.now(UTC) - timedelta(seconds=seconds)


def _later(conn: Conn, seconds: float) -> ColumnElement[datetime] | datetime:
    if _pg(conn):
        return func.clock_timestamp() + timedelta(seconds=seconds)
    return datetime.now(UTC) + timedelta(seconds=seconds)


# -- masters ------------------------------------------------------------------------------------


def register_master(
    conn: Conn, master_id: str, name: str, url: str, version: str, link_key: str | None = None
) -> None:
    """``link_key``: the SHA-256 (hex) of the key this process reaches other masters' agents with."""
    conn.execute(
        insert(MasterRow).values(
            id=master_id,
            name=name,
            url=url,
            version=version,
            started_at=_now(conn),
            seen_at=_now(conn),
            link_key=link_key,
        )
    )


def beat(
    conn: Conn,
    master_id: str,
    name: str,
    url: str,
    version: str,
    forget_after: float,
    link_key: str | None = None,
) -> None:
    """This master lives (its row is made again if it was pruned); rows of masters not seen for
    ``forget_after`` seconds go."""
    done = conn.execute(update(MasterRow).where(MasterRow.id == master_id).values(seen_at=_now(conn)))
    if not done.rowcount:  # type: ignore[attr-defined]
        register_master(conn, master_id, name, url, version, link_key)
    conn.execute(delete(MasterRow).where(MasterRow.seen_at < _ago(conn, forget_after)))


def list_masters(conn: Conn, within: float) -> list[MasterView]:
    """The masters seen in the last ``within`` seconds, by name."""
    rows = conn.execute(
        select(
            MasterRow.id,
            MasterRow.name,
            MasterRow.url,
            MasterRow.version,
            MasterRow.started_at,
            MasterRow.seen_at,
        )
        .where(MasterRow.seen_at >= _ago(conn, within))
        .order_by(MasterRow.name, MasterRow.started_at)
    )
    return [MasterView(*row) for row in rows]


def link_key_of(conn: Conn, master_id: str, within: float) -> tuple[str, str | None] | None:
    """(name, link key hash) of a master seen in the last ``within`` seconds; None if none was."""
    found = conn.execute(
        select(MasterRow.name, MasterRow.link_key).where(
            MasterRow.id == master_id, MasterRow.seen_at >= _ago(conn, within)
        )
    ).first()
    return (found[0], found[1]) if found is not None else None


def master_names(conn: Conn) -> dict[str, str]:
    """Every known master's id -> name."""
    return dict(conn.execute(select(MasterRow.id, MasterRow.name)).tuples())


def hold_life_lock(conn: Connection, master_id: str) -> None:
    """Take this master's life lock on ``conn`` (autocommit), held while the connection lives."""
    conn.execute(
        text("SELECT pg_advisory_lock(:cls, hashtext(:id))"), {"cls": LIFE_LOCK_CLASS, "id": master_id}
    )


def is_gone(conn: Connection, master_id: str) -> bool:
    """Whether the master's process is gone: nobody holds its life lock (PostgreSQL dropped it
    with the dead process's connection). Must run on a connection that is not that master's."""
    got = conn.execute(
        text("SELECT pg_try_advisory_lock(:cls, hashtext(:id))"), {"cls": LIFE_LOCK_CLASS, "id": master_id}
    ).scalar()
    if got:
        conn.execute(
            text("SELECT pg_advisory_unlock(:cls, hashtext(:id))"), {"cls": LIFE_LOCK_CLASS, "id": master_id}
        )
    return bool(got)


# -- leases -------------------------------------------------------------------------------------


def prepare_connection(conn: Connection, master_id: str) -> None:
    """The leadership connection (autocommit): named after its master, waits at most 2 s for a lock
    (a writer checking the lease holds it only until its commit)."""
    conn.execute(
        text("SELECT set_config('application_name', :name, false)"), {"name": f"moorage-master-{master_id}"}
    )
    conn.execute(text("SET lock_timeout = '2s'"))


def acquire_lease(
    conn: Connection, name: str, holder: str, ttl: float, gone: Collection[str] = ()
) -> int | None:
    """Take the lease if it is free, expired, or held by a master that is ``gone``; the new epoch,
    or None if another holds it."""
    conn.execute(
        text(
            "INSERT INTO leases (name, holder, epoch, expires_at) "
            "VALUES (:name, NULL, 0, clock_timestamp()) ON CONFLICT (name) DO NOTHING"
        ),
        {"name": name},
    )
    free = (LeaseRow.holder.is_(None)) | (LeaseRow.expires_at < func.clock_timestamp())
    if gone:
        free = free | LeaseRow.holder.in_(list(gone))
    epoch = conn.execute(
        update(LeaseRow)
        .where(LeaseRow.name == name, free)
        .values(holder=holder, epoch=LeaseRow.epoch + 1, expires_at=_later(conn, ttl))
        .returning(LeaseRow.epoch)
    ).scalar()
    return None if epoch is None else int(epoch)


def renew_lease(conn: Connection, name: str, holder: str, epoch: int, ttl: float) -> bool:
    """Extend a lease this master holds at ``epoch`` and that has not run out; False if it was
    taken since or ran out (it is lost). A lease that ran out is lost even when nobody took it:
    the fence (``check_lease``) refused every write meanwhile, so the work that met it stopped
    ("the next leader resumes it"), and only a loss and a new gain take that work up again."""
    done = conn.execute(
        update(LeaseRow)
        .where(
            LeaseRow.name == name,
            LeaseRow.holder == holder,
            LeaseRow.epoch == epoch,
            LeaseRow.expires_at > func.clock_timestamp(),
        )
        .values(expires_at=_later(conn, ttl))
    )
    return bool(done.rowcount)


def release_lease(conn: Connection, name: str, holder: str, epoch: int) -> None:
    """Give the lease up (a master that stops): another master takes it at its next look."""
    conn.execute(
        update(LeaseRow)
        .where(LeaseRow.name == name, LeaseRow.holder == holder, LeaseRow.epoch == epoch)
        .values(holder=None, expires_at=func.clock_timestamp())
    )


def check_lease(session: Session, name: str, holder: str, epoch: int) -> None:
    """The fence: raise ``LeaseLost`` unless ``holder`` holds the lease at ``epoch`` now. Run as the
    last statement of a transaction of once-only work: the row stays share-locked until commit,
    so a master taking the lease over waits for this transaction, and one that took it already
    makes this check fail (and the transaction roll back). A process paused between this check
    and its commit is cut off by PostgreSQL after 5 s idle, which frees the row."""
    session.execute(text("SET LOCAL idle_in_transaction_session_timeout = '5s'"))
    held = session.execute(
        text(
            "SELECT 1 FROM leases WHERE name = :name AND holder = :holder AND epoch = :epoch "
            "AND expires_at > clock_timestamp() FOR SHARE"
        ),
        {"name": name, "holder": holder, "epoch": epoch},
    ).scalar()
    if held is None:
        raise LeaseLost(f"this master lost the {name} lease (epoch {epoch})")


def lease_view(conn: Conn, name: str) -> LeaseView | None:
    row = conn.execute(
        select(
            LeaseRow.holder,
            LeaseRow.epoch,
            LeaseRow.expires_at,
            (LeaseRow.holder.is_not(None)) & (LeaseRow.expires_at > _now(conn)),
        ).where(LeaseRow.name == name)
    ).one_or_none()
    return None if row is None else LeaseView(row[0], int(row[1]), row[2], bool(row[3]))


# -- nodes and their masters --------------------------------------------------------------------


def online_nodes_of(session: Session, master_ids: Sequence[str]) -> dict[str, str]:
    """The nodes online in the store whose agents are connected to one of these masters: node id
    -> master id."""
    if not master_ids:
        return {}
    rows = session.execute(
        select(NodeRow.id, NodeRow.master_id).where(
            NodeRow.status == NodeStatus.ONLINE.value, NodeRow.master_id.in_(list(master_ids))
        )
    ).tuples()
    return {node_id: str(master_id) for node_id, master_id in rows}


def of_gone_masters(
    master_id: InstrumentedAttribute[str | None], live: Collection[str]
) -> ColumnElement[bool]:
    """Rows held by a master not among the ``live`` ones (or by none recorded, from before
    masters were): a node's connection, a job's data path, died with it."""
    return master_id.is_(None) | master_id.not_in(sorted(live))


def mark_orphans_offline(session: Session, live: Collection[str]) -> int:
    """Nodes still online under a master that is not among the ``live`` ones (it died with their
    connections): offline, until their agents say hello to a live master. How many."""
    now = datetime.now(UTC)
    done = session.execute(
        update(NodeRow)
        .where(
            NodeRow.status == NodeStatus.ONLINE.value,
            of_gone_masters(NodeRow.master_id, live),
        )
        .values(status=NodeStatus.OFFLINE.value, status_since=now, updated_at=now)
    )
    return int(done.rowcount)  # type: ignore[attr-defined]


def nodes_per_master(session: Session) -> dict[str, int]:
    """How many nodes are online under each master id."""
    rows = session.execute(
        select(NodeRow.master_id, func.count())
        .where(NodeRow.status == NodeStatus.ONLINE.value, NodeRow.master_id.is_not(None))
        .group_by(NodeRow.master_id)
    ).tuples()
    return {str(master_id): int(count) for master_id, count in rows}

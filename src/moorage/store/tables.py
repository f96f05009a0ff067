"""SQL tables of the master's state. Only ``moorage.store`` touches these; the API speaks in wire
schemas and the core in ``moorage.model`` types."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect, ForeignKey, Integer, String, TypeDecorator, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["AdminTokenRow", "Base", "GridRow", "NodeRow", "UTCDateTime"]


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and always read back timezone-aware (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use datetime.now(UTC)")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: UTCDateTime()}


class AdminTokenRow(Base):
    __tablename__ = "admin_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]


class GridRow(Base):
    __tablename__ = "grids"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    join_token: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class NodeRow(Base):
    __tablename__ = "nodes"
    __table_args__ = (UniqueConstraint("grid_id", "name", name="uq_nodes_grid_name"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # chosen by the agent, kept on disk
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))  # online | offline
    status_since: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    labels: Mapped[dict[str, Any]]
    info: Mapped[dict[str, Any]]  # engine_version, cpus, memory, drivers: [{name, version, scope}]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

"""The volume views the API serves: the few-query read path gives what the per-volume one gave."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from moorage.master.service_fields import create_service
from moorage.stackfile import stack_from_dict
from moorage.stackfile.stored_service import load_service, service_document
from moorage.store.database import Database
from moorage.store.grids import create_grid, get_grid_row
from moorage.store.nodes import register_node
from moorage.store.services import save_service
from moorage.store.tables import GridRow, NodeRow, ServiceRow, VolumeInstanceRow, VolumeRow
from moorage.store.volumes import (
    VolumeInstanceView,
    VolumeView,
    create_volume,
    list_volumes,
    remove_volume,
    services_using,
    show_volume,
)
from tests.support.volume_views import add_volume_instance, sample_volume_view

STACK = {
    "stack": "shop",
    "services": {
        "db": {
            "image": "postgres:local",
            "volumes": ["pgdata:/var/lib/postgresql/data", "/srv/conf:/conf:ro"],
        },
        "web": {
            "image": "nginx:local",
            "volumes": ["assets:/assets:ro,nocopy", "/cache", "pgdata:/backup:ro"],
        },
        "worker": {"image": "busybox:local", "volumes": ["scratch:/tmp/a", "scratch:/tmp/b"]},
        "plain": {"image": "busybox:local"},
    },
    "volumes": {
        "pgdata": {"external": {"name": "shop-db-data"}},
        "assets": {"external": True},
        "scratch": {"external": {"name": "tmp-space"}},
    },
}


def _reference(session: Session, grid: str) -> list[VolumeView]:
    """The volume list as the store built it before: one query per volume, every service loaded."""
    grid_row = get_grid_row(session, grid)
    users: dict[str, list[str]] = {}
    for service in session.scalars(
        select(ServiceRow)
        .where(ServiceRow.grid_id == grid_row.id)
        .order_by(ServiceRow.stack, ServiceRow.name)
    ):
        for volume in load_service(service.spec).grid_volumes:
            users.setdefault(volume, []).append(f"{grid_row.name}/{service.stack}/{service.name}")
    views = []
    for row in session.scalars(
        select(VolumeRow).where(VolumeRow.grid_id == grid_row.id).order_by(VolumeRow.name)
    ):
        instances = session.execute(
            select(VolumeInstanceRow, NodeRow.name)
            .join(NodeRow, NodeRow.id == VolumeInstanceRow.node_id)
            .where(VolumeInstanceRow.volume_id == row.id)
            .order_by(VolumeInstanceRow.name, NodeRow.name)
        ).tuples()
        views.append(
            VolumeView(
                grid=grid_row.name,
                name=row.name,
                scope=row.scope,
                driver=row.driver,
                driver_opts=dict(row.driver_opts),
                labels=dict(row.labels),
                created_at=row.created_at,
                updated_at=row.updated_at,
                instances=tuple(
                    VolumeInstanceView(
                        id=vi.id,
                        name=vi.name,
                        node=node,
                        zone=vi.zone,
                        region=vi.region,
                        state=vi.state,
                        error=vi.error,
                    )
                    for vi, node in instances
                ),
                services=tuple(users.get(row.name, [])),
                topology=row.topology,
            )
        )
    return views


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'store.db'}")
    database.migrate()
    return database


def test_list_and_show_match_the_per_volume_reference(db: Database) -> None:
    with db.session() as session:
        for grid in ("alpha", "beta"):
            create_grid(session, grid)
            for name in ("shop-db-data", "assets", "tmp-space", "unused", "Zeta", "a_b"):
                create_volume(
                    session, grid, name=name, scope="instance", driver="local", driver_opts={"o": "x=1"}
                )
            grid_row = session.scalar(select(GridRow).where(GridRow.name == grid))
            assert grid_row is not None
            for n in (2, 1):
                info = {"cpus": 1, "memory": 1, "drivers": []}
                register_node(session, grid_row, f"{grid}-node-{n}", f"node-{n}", [], info)
    with db.session() as session:
        for grid in ("alpha", "beta"):
            add_volume_instance(
                session, grid, "shop-db-data", f"{grid}-node-2", "shop.db.shop-db-data-1", "present"
            )
            add_volume_instance(
                session,
                grid,
                "shop-db-data",
                f"{grid}-node-1",
                "shop.db.shop-db-data-2",
                "error",
                "disk full",
            )
            add_volume_instance(session, grid, "assets", f"{grid}-node-2", "assets", "pending")
            add_volume_instance(session, grid, "assets", f"{grid}-node-1", "assets", "present")
        create_service(session, "alpha", {"name": "api", "image": "x:local", "volumes": ["assets:/a"]})
        create_service(
            session,
            "alpha",
            {"name": "batch", "image": "x:local", "volumes": ["tmp-space:/t", "assets:/b:ro"]},
        )
    with db.session() as session:
        for grid in ("alpha", "beta"):
            listed = list_volumes(session, grid)
            assert listed == _reference(session, grid)
            assert [show_volume(session, grid, v.name) for v in listed] == listed
        alpha = {v.name: v for v in list_volumes(session, "alpha")}
        assert alpha["assets"].services == ("alpha/null/api", "alpha/null/batch")
        assert [(i.name, i.node) for i in alpha["assets"].instances] == [
            ("assets", "node-1"),
            ("assets", "node-2"),
        ]
        assert [i.node for i in alpha["shop-db-data"].instances] == ["node-2", "node-1"]
        assert services_using(session, get_grid_row(session, "alpha")) == {
            "assets": ["alpha/null/api", "alpha/null/batch"],
            "tmp-space": ["alpha/null/batch"],
        }
    with db.session() as session:
        assert remove_volume(session, "beta", "assets") == {"beta-node-1", "beta-node-2"}
    with db.session() as session:
        assert list_volumes(session, "beta") == _reference(session, "beta")
        assert "assets" not in {v.name for v in list_volumes(session, "beta")}
        assert remove_volume(session, "beta", "shop-db-data") == {"beta-node-1", "beta-node-2"}
    with db.session() as session:
        beta = get_grid_row(session, "beta")
        left = session.execute(
            select(VolumeInstanceRow.name, VolumeInstanceRow.state, VolumeInstanceRow.volume_id)
            .where(VolumeInstanceRow.grid_id == beta.id, VolumeInstanceRow.name.like("shop.db.%"))
            .order_by(VolumeInstanceRow.name)
        ).all()
        assert [tuple(row) for row in left] == [
            ("shop.db.shop-db-data-1", "removing", None),
            ("shop.db.shop-db-data-2", "removing", None),
        ], "each instance keeps its own Docker name for its agent to remove"


def test_volume_users_are_what_each_stored_service_mounts(db: Database) -> None:
    """Aliases resolve through the stack's external names; binds and anonymous mounts are no
    volume users; a volume mounted twice by one service lists that service once."""
    spec = stack_from_dict(STACK)
    with db.session() as session:
        create_grid(session, "g")
        grid_row = get_grid_row(session, "g")
        for service in spec.services:
            save_service(session, grid_row, "shop", service.name, service_document(spec, service))
    with db.session() as session:
        grid_row = get_grid_row(session, "g")
        users = services_using(session, grid_row)
        rows = session.scalars(select(ServiceRow).order_by(ServiceRow.name))
        mounted = {row.name: load_service(row.spec).grid_volumes for row in rows}
    assert users == {
        "shop-db-data": ["g/shop/db", "g/shop/web"],
        "assets": ["g/shop/web"],
        "tmp-space": ["g/shop/worker"],
    }
    assert mounted == {
        "db": ["shop-db-data"],
        "plain": [],
        "web": ["assets", "shop-db-data"],
        "worker": ["tmp-space"],
    }


def test_list_fields_are_what_volume_out_gives() -> None:
    from moorage.master.schemas import VolumeOut, volume_out
    from moorage.master.volume_lists import volume_fields

    now = datetime.now(UTC)
    view = sample_volume_view(now, {"o": "size=1g"}, {"team": "a"}, "x")
    assert VolumeOut.model_validate(volume_fields(view)) == volume_out(view)

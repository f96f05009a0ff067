"""The volumes API's rendered JSON, the store's data_version token and the kept volume lists."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from moorage.master import volume_lists
from moorage.master.schemas import VolumeList, VolumeOut, volume_out
from moorage.master.service_fields import create_service
from moorage.master.volume_lists import VolumeLists, volume_json, volume_list_json
from moorage.protocol import VolumeStatus
from moorage.store.database import Database
from moorage.store.grids import create_grid, get_grid_row
from moorage.store.instances import apply_volume_status
from moorage.store.nodes import register_node
from moorage.store.tables import VolumeInstanceRow, VolumeRow
from moorage.store.versions import data_version, data_version_probe
from moorage.store.volumes import (
    VolumeView,
    create_volume,
    list_volumes,
    remove_volume,
    show_volume,
    volume_heads,
    volume_listing,
)
from tests.support.volume_views import add_volume_instance, sample_volume_view


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'store.db'}")
    database.migrate()
    return database


def _read(db: Database, work: Any) -> Any:
    """``db.read(work)`` from a plain test: on the reader connection, as the event loop would."""
    return asyncio.run(db.read(work))


def _seed(db: Database) -> None:
    with db.session() as session:
        create_grid(session, "g")
        for name, labels in (
            ("data", {"team": 'ä \u2028 "q"'}),
            ("logs", {}),
            ("spare", {}),
            ("zeta", {"x": "1"}),
        ):
            create_volume(session, "g", name=name, scope="instance", driver="local", labels=labels)
        row = get_grid_row(session, "g")
        register_node(session, row, "node-0001", "n1", ["zone=a"], {"cpus": 1, "memory": 1, "drivers": []})
    with db.session() as session:
        add_volume_instance(session, "g", "data", "node-0001", "web.data-1", "present")
        create_service(session, "g", {"name": "web", "image": "x:local", "volumes": ["data:/d", "logs:/l"]})


# -- rendering -------------------------------------------------------------------------------


@pytest.mark.parametrize("microsecond", [0, 120, 999_999])
def test_rendered_json_is_what_the_response_models_gave(microsecond: int) -> None:
    when = datetime(2024, 2, 29, 23, 59, 1, microsecond, tzinfo=UTC)
    view = sample_volume_view(when, {"o": "size=1g,é", "empty": ""}, {"quote": '"<>&\u2028'}, "ü")
    assert volume_json(view) == TypeAdapter(VolumeOut).dump_json(volume_out(view))
    listed = VolumeList(volumes=[volume_out(view), volume_out(view)])
    assert volume_list_json([view, view]) == TypeAdapter(VolumeList).dump_json(listed)
    assert volume_list_json([]) == b'{"volumes":[]}'


def test_a_built_list_is_byte_for_byte_the_plain_rendering(db: Database) -> None:
    _seed(db)
    lists = VolumeLists()

    def both(session: Session) -> tuple[bytes, bytes]:
        return lists.build(session, "g"), volume_list_json(list_volumes(session, "g"))

    built, plain = _read(db, both)
    assert built == plain and b'"services":[{"id":"g/null/web"}]' in built
    with db.session() as session:  # change some volumes; the others' rendered fields are reused
        create_volume(session, "g", name="new", scope="grid", driver="local", driver_opts={"a": "b"})
        session.execute(update(VolumeRow).where(VolumeRow.name == "zeta").values(labels={"x": "2"}))
        remove_volume(session, "g", "spare")
    built, plain = _read(db, both)
    assert built == plain and b'"x":"2"' in built and b'"name":"new"' in built
    assert b'"name":"spare"' not in built


def test_built_lists_reuse_rendered_volumes_on_every_store(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = Database(db_url)
    database.migrate()
    rendered: list[str] = []

    def recording(session: Session, grid: str, keys: Any) -> dict[Any, VolumeView]:
        heads = volume_heads(session, grid, keys)
        rendered.extend(sorted(view.name for view in heads.values()))
        return heads

    monkeypatch.setattr(volume_lists, "volume_heads", recording)
    try:
        _seed(database)
        lists = VolumeLists()

        def both(session: Session) -> tuple[bytes, bytes]:
            return lists.build(session, "g"), volume_list_json(list_volumes(session, "g"))

        built, plain = asyncio.run(database.read(both))
        assert built == plain and rendered == ["data", "logs", "spare", "zeta"]
        assert asyncio.run(database.read(both)) == (plain, plain)
        assert len(rendered) == 4, "nothing changed: nothing rendered again"
        with database.session() as session:
            session.execute(update(VolumeRow).where(VolumeRow.name == "zeta").values(labels={"x": "3"}))
        built, plain = asyncio.run(database.read(both))
        assert built == plain and b'"x":"3"' in built
        assert rendered[4:] == ["zeta"], "only the changed volume is rendered again"
    finally:
        database.dispose()


def test_volume_heads_leaves_out_what_changed_since_the_listing(db: Database) -> None:
    _seed(db)
    listing = _read(db, lambda session: volume_listing(session, "g"))
    keys = [key for key, _, _ in listing.volumes]
    with db.session() as session:
        session.execute(update(VolumeRow).where(VolumeRow.name == "zeta").values(labels={"x": "9"}))
    heads = _read(db, lambda session: volume_heads(session, "g", keys))
    assert sorted(view.name for view in heads.values()) == ["data", "logs", "spare"]
    assert _read(db, lambda session: VolumeLists().build(session, "g")) == _read(
        db, lambda session: volume_list_json(list_volumes(session, "g"))
    )


# -- the store's token -----------------------------------------------------------------------


def test_data_version_changes_with_every_commit_by_anyone(db: Database, tmp_path: Path) -> None:
    _seed(db)
    token = _read(db, data_version)
    assert token is not None
    assert _read(db, data_version) == token, "nothing committed: the same token"
    with db.session() as session:  # a unit of work that only reads commits nothing
        list_volumes(session, "g")
    assert _read(db, data_version) == token
    with db.session() as session:
        create_volume(session, "g", name="more", scope="grid", driver="local")
    after_ours = _read(db, data_version)
    assert after_ours != token
    other = sqlite3.connect(tmp_path / "store.db")  # another process would do the same
    try:
        other.execute("UPDATE volume_instances SET state = 'missing'")
        other.commit()
    finally:
        other.close()
    assert _read(db, data_version) not in (token, after_ours)


def test_a_probe_takes_the_same_token_without_a_session_until_the_store_closes(db: Database) -> None:
    _seed(db)
    probe = _read(db, data_version_probe)
    assert probe is not None
    before = probe()
    assert before == _read(db, data_version)
    with db.session() as session:
        create_volume(session, "g", name="more", scope="grid", driver="local")
    assert probe() != before
    assert probe() == _read(db, data_version)
    db.dispose()
    assert probe() is None


def test_data_version_is_none_where_it_would_not_be_exact(db: Database) -> None:
    with db.session() as session:  # a connection that writes would not see its own commits
        assert data_version(session) is None
    memory = Database("sqlite://")
    memory.migrate()
    try:
        assert asyncio.run(memory.read(data_version)) is None
    finally:
        memory.dispose()


# -- kept lists ------------------------------------------------------------------------------


def test_a_list_is_kept_until_anything_is_committed(db: Database, tmp_path: Path) -> None:
    _seed(db)
    lists = VolumeLists()

    def body(grid: str = "g") -> bytes:
        return asyncio.run(lists.body(db, grid))

    first = body()
    assert body() == first and lists.built == 1
    with db.session() as session:
        create_grid(session, "other")
    assert body("other") == b'{"volumes":[]}'
    assert body() == first and lists.built == 3, "any commit: built again (and the same here)"
    assert body() == body("g") and lists.built == 3
    with db.session() as session:  # an agent's report, through the hub's store call
        vi_id = session.scalar(select(VolumeInstanceRow.id))
        assert vi_id is not None
        apply_volume_status(
            session, "node-0001", [VolumeStatus(volume_instance_id=vi_id, name="web.data-1", state="missing")]
        )
    assert b'"state":"missing"' in body() and lists.built == 4
    other = sqlite3.connect(tmp_path / "store.db")
    try:
        other.execute("UPDATE nodes SET name = 'renamed'")
        other.commit()
    finally:
        other.close()
    assert b'"node":"renamed"' in body()


# -- single-volume reads of the services that mount it ---------------------------------------


def test_services_of_one_volume_are_exact_despite_look_alike_names(db: Database) -> None:
    names = ["ab_c", "abXc", "AB_C", "ab-c", "ab", "b_c"]
    with db.session() as session:
        create_grid(session, "g")
        for name in names:
            create_volume(session, "g", name=name, scope="grid", driver="local")
        for n, name in enumerate(names):
            create_service(session, "g", {"name": f"s{n}", "image": "x:local", "volumes": [f"{name}:/d"]})
    with db.session() as session:
        for n, name in enumerate(names):
            assert show_volume(session, "g", name).services == (f"g/null/s{n}",)
        assert [v.services for v in list_volumes(session, "g")] == [
            (f"g/null/s{names.index(v.name)}",) for v in list_volumes(session, "g")
        ]


# -- agents' volume reports --------------------------------------------------------------------


def test_a_volume_report_is_one_query_and_keeps_its_rules(db: Database) -> None:
    with db.session() as session:
        create_grid(session, "g")
        create_volume(session, "g", name="data", scope="instance", driver="local")
        row = get_grid_row(session, "g")
        for node in ("node-0001", "node-0002"):
            register_node(session, row, node, node, [], {"cpus": 1, "memory": 1, "drivers": []})
    with db.session() as session:
        ids = {
            state: add_volume_instance(session, "g", "data", "node-0001", f"data-{state}", state)
            for state in ("pending", "present", "removing", "error")
        }
        gone = add_volume_instance(session, "g", "data", "node-0001", "data-gone", "removing")
        elsewhere = add_volume_instance(session, "g", "data", "node-0002", "data-elsewhere", "pending")
    selects: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            selects.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        with db.session() as session:
            changed = apply_volume_status(
                session,
                "node-0001",
                [
                    VolumeStatus(volume_instance_id=ids["pending"], name="a", state="present"),
                    VolumeStatus(volume_instance_id=ids["present"], name="b", state="present"),  # same
                    VolumeStatus(volume_instance_id=ids["removing"], name="c", state="present", error="busy"),
                    VolumeStatus(volume_instance_id=ids["error"], name="d", state="removed"),
                    VolumeStatus(volume_instance_id=gone, name="e", state="removed"),
                    VolumeStatus(volume_instance_id=gone, name="e", state="removed"),  # already gone
                    VolumeStatus(volume_instance_id=elsewhere, name="f", state="present"),  # not this node's
                    VolumeStatus(volume_instance_id="unknown", name="g", state="present"),
                ],
            )
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert changed == 4
    assert len(selects) == 1, selects
    with db.session() as session:
        rows = {r.id: (r.state, r.error) for r in session.scalars(select(VolumeInstanceRow))}
    assert rows == {
        ids["pending"]: ("present", None),
        ids["present"]: ("present", None),
        ids["removing"]: ("removing", "busy"),
        ids["error"]: ("missing", None),
        elsewhere: ("pending", None),
    }
    with db.session() as session:
        assert apply_volume_status(session, "node-0001", []) == 0

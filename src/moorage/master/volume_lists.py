"""The JSON of the volumes API, and the bodies of ``GET /v1/volumes/{grid}`` kept between changes.

Rendering: a volume is serialized as plain fields by pydantic's own serializer, the bytes FastAPI
gave for the ``VolumeOut``/``VolumeList`` response models (tests pin that), without building and
validating a model per volume, instance and service ref.

Keeping: ``VolumeLists`` keeps each grid's rendered list under the store's ``data_version``
token, taken before the list was read: while the token is unchanged nothing has been committed,
by anyone, so the kept body is exactly what reading and rendering again would give. Any commit (a
volume created or removed, a deployment writing volume instances, an agent's status report, a
service or stack saved or removed, a node renamed, a grid removed; by this master or by another
process on the same store) changes the token, and the next list is read afresh. No writer has to
invalidate anything. A kept list is served after one look at the token on the reader's connection
(``data_version_probe``), with no unit of work. Where the store has no such token (PostgreSQL, a
reader that may write) every list is read afresh, as before.

Building: a list is assembled from each volume's own fields rendered once and kept by the store's
key for them (``volume_listing``; a key changes when any of those fields does), plus its
instances and services, which are rendered every time. So a list after a write converts and
renders only the volumes that are new or changed, whatever the size of the grid.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Any

from pydantic_core import to_json
from sqlalchemy.orm import Session

from moorage.model.volume import volume_drift
from moorage.store.database import Database
from moorage.store.versions import data_version, data_version_probe
from moorage.store.volumes import (
    VolumeInstanceView,
    VolumeView,
    list_volumes,
    volume_heads,
    volume_listing,
)

__all__ = ["VolumeLists", "volume_fields", "volume_json", "volume_list_json"]


def volume_fields(view: VolumeView) -> dict[str, Any]:
    """``volume_out(view)`` as plain fields, in the model's field order."""
    return {
        "id": f"{view.grid}/{view.name}",
        "name": view.name,
        "scope": view.scope,
        "driver": view.driver,
        "topology": view.topology,
        "driver_opts": view.driver_opts,
        "labels": view.labels,
        "created_at": view.created_at,
        "updated_at": view.updated_at,
        "stack": f"{view.grid}/{view.stack}" if view.stack is not None else None,
        "on_node_lost": view.on_node_lost,
        "instances": _instances_fields(view, view.instances),
        "services": _services_fields(view.services),
    }


def _instances_fields(volume: VolumeView, instances: Iterable[VolumeInstanceView]) -> list[dict[str, Any]]:
    """The instances of ``volume`` (whose definition their drift is measured against)."""
    return [
        {
            "name": i.name,
            "node": i.node,
            "zone": i.zone,
            "region": i.region,
            "state": i.state,
            "error": i.error,
            "unused_since": i.unused_since,
            "drift": volume_drift(
                volume.driver, volume.driver_opts, i.reported_driver, i.reported_driver_opts
            ),
        }
        for i in instances
    ]


def _services_fields(services: Iterable[str]) -> list[dict[str, str]]:
    return [{"id": s} for s in services]


def volume_json(view: VolumeView) -> bytes:
    """One volume as the API's JSON (``VolumeOut``)."""
    return to_json(volume_fields(view))


def volume_list_json(views: list[VolumeView]) -> bytes:
    """A grid's volumes as the API's JSON (``VolumeList``)."""
    return to_json({"volumes": [volume_fields(v) for v in views]})


def _head_json(view: VolumeView) -> bytes:
    """A volume's own fields as the start of its JSON object: ``{"id":…,"updated_at":"…"``."""
    fields = volume_fields(view)
    del fields["instances"], fields["services"]
    return to_json(fields)[:-1]


def _instances_json(volume: VolumeView, instances: tuple[VolumeInstanceView, ...]) -> bytes:
    return to_json(_instances_fields(volume, instances)) if instances else b"[]"


def _services_json(services: list[str] | None) -> bytes:
    return to_json(_services_fields(services)) if services else b"[]"


class VolumeLists:
    """Rendered volume lists by grid name, all from one store version, and the rendered fields of
    the volumes they show, by the store's key for them (see the module)."""

    def __init__(self, max_grids: int = 256, max_heads: int = 100_000) -> None:
        self.max_grids = max_grids
        self.max_heads = max_heads
        self._version: Hashable | None = None
        self._probe: Callable[[], Hashable | None] | None = None  # takes the token without a session
        self._bodies: dict[str, bytes] = {}
        self._heads: dict[Hashable, tuple[bytes, VolumeView]] = {}  # and the fields drift is read against
        self.built = 0  # lists built from the store (the rest were kept ones): for tests and benches

    async def body(self, db: Database, grid: str) -> bytes:
        """``GET /v1/volumes/{grid}``'s body (NotFound: no such grid). A kept one costs a look at
        the store's token on the reader's connection; anything else, one read of the store."""
        probe = self._probe
        if probe is not None and self._version is not None and probe() == self._version:
            kept = self._bodies.get(grid)
            if kept is not None:
                return kept
        return await db.read(lambda session: self.read(session, grid))

    def read(self, session: Session, grid: str) -> bytes:
        """``body`` in a unit of work of the store (``session``)."""
        version = data_version(session)  # first: the reads below see at least what it says
        if version is None:
            return self.build(session, grid)
        if version != self._version:
            self._bodies.clear()
            self._version = version
            self._probe = data_version_probe(session)
        body = self._bodies.get(grid)
        if body is None:
            body = self.build(session, grid)
            if len(self._bodies) >= self.max_grids:
                self._bodies.clear()
            self._bodies[grid] = body
        return body

    def build(self, session: Session, grid: str) -> bytes:
        """The list from the store, rendering only the volumes whose fields are not rendered yet;
        the same bytes as ``volume_list_json(list_volumes(session, grid))``."""
        self.built += 1
        listing = volume_listing(session, grid)
        # Taken into a dict of this call's own: without a store token, lists are built on worker
        # threads, and another may clear the kept ones meanwhile.
        heads: dict[Hashable, tuple[bytes, VolumeView]] = {}
        missing: list[Hashable] = []
        for key, _, _ in listing.volumes:
            head = self._heads.get(key)
            if head is None:
                missing.append(key)
            else:
                heads[key] = head
        if missing:
            found = volume_heads(session, listing.grid, missing)
            if len(found) < len(missing):  # changed since the listing read it: read it all again
                return volume_list_json(list_volumes(session, grid))
            if len(self._heads) + len(found) > self.max_heads:
                self._heads.clear()
            for key, view in found.items():
                heads[key] = self._heads[key] = (_head_json(view), view)
        parts = [
            b"".join(
                (
                    heads[key][0],
                    b',"instances":',
                    _instances_json(heads[key][1], listing.instances.get(volume_id, ())),
                    b',"services":',
                    _services_json(listing.users.get(name)),
                    b"}",
                )
            )
            for key, volume_id, name in listing.volumes
        ]
        return b'{"volumes":[' + b",".join(parts) + b"]}"

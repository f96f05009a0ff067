"""Stored services read back through the stack pipeline, and the cache that spares polls the work."""

from __future__ import annotations

import copy

from moorage.model.stack import ServiceSpec, StackSpec
from moorage.stackfile.stored_service import load_service, service_document


def _document(image: str) -> dict[str, object]:
    spec = ServiceSpec(name="web", image=image, instances=2)
    return service_document(StackSpec(name="shop", services=(spec,), volumes=()), spec)


def test_a_cached_service_is_given_again_only_for_an_equal_document() -> None:
    first = _document("nginx:1.25")
    loaded = load_service(first, key=("test", 1))
    assert load_service(copy.deepcopy(first), key=("test", 1)) is loaded
    changed = load_service(_document("nginx:1.27"), key=("test", 1))  # same row, upgraded
    assert changed.spec.image == "nginx:1.27"
    assert load_service(first, key=("test", 2)).spec.image == "nginx:1.25"


def test_changing_a_document_after_loading_it_does_not_change_what_is_cached() -> None:
    document = _document("redis:7")
    assert load_service(document, key=("test", 3)).spec.image == "redis:7"
    services = document["services"]
    assert isinstance(services, dict)
    services["web"]["image"] = "redis:8"
    assert load_service(document, key=("test", 3)).spec.image == "redis:8"

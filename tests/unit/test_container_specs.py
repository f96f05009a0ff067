"""The containers the master plans: documents agents accept, and hashes that only move when the config does."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from moorage.master.container_specs import ContainerTemplate, canonical_json, config_body
from moorage.model.stack import Mount, MountKind, PortMapping, ServiceSpec
from moorage.protocol import ContainerSpec

REDIS = ServiceSpec(
    name="redis",
    image="redis:7",
    command="redis-server --appendonly yes",
    instances=3,
    mounts=(
        Mount(MountKind.NAMED, target="/data", source="data"),
        Mount(MountKind.BIND, target="/etc/conf", source="/host/conf", flags="ro"),
        Mount(MountKind.ANONYMOUS, target="/tmp"),
    ),
    ports=(PortMapping(host_port=6379, container_port=6379),),
    environment=(("MODE", "primär"), ("B", "x y")),
    memory=64 << 20,
    cpus=0.5,
)


def _hash(document: dict[str, object]) -> str:
    return hashlib.sha256(canonical_json(config_body(document)).encode()).hexdigest()[:16]


def test_document_is_the_container_spec_agents_receive() -> None:
    planned = ContainerTemplate("g", "redis", REDIS).document(2, {"data": "redis.redis.data-2"})
    spec = ContainerSpec.model_validate(planned.document)
    assert spec.model_dump(mode="json") == planned.document
    assert spec.name == "redis.redis-2"
    assert spec.command == ["redis-server", "--appendonly", "yes"]
    assert [m.source for m in spec.mounts] == ["redis.redis.data-2", "/host/conf", None]
    assert [m.read_only for m in spec.mounts] == [False, True, False]
    assert spec.labels["io.moorage.instance"] == "2"
    assert spec.labels["io.moorage.config-hash"] == spec.config_hash == planned.config_hash
    assert (planned.host_ports, planned.memory, planned.cpus) == ((6379,), 64 << 20, 0.5)


def test_hash_is_stable_across_moorage_versions() -> None:
    # Changing how the hash is computed would recreate every container of every grid on upgrade.
    planned = ContainerTemplate("g", "redis", REDIS).document(1, {"data": "redis.redis.data-1"})
    assert planned.config_hash == "0f4732d81b9ef6ef"  # what Moorage 0.1 computed


@pytest.mark.parametrize(
    "change",
    [
        {"image": "redis:7.2"},
        {"command": "redis-server"},
        {"environment": (("MODE", "primary"), ("B", "x y"))},
        {"memory": 128 << 20},
        {"cpus": 1.0},
        {"ports": (PortMapping(host_port=6380, container_port=6379),)},
        {"mounts": (Mount(MountKind.NAMED, target="/var/data", source="data"),)},
    ],
)
def test_any_config_change_moves_the_hash(change: dict[str, object]) -> None:
    names = {"data": "redis.redis.data-1"}
    before = ContainerTemplate("g", "redis", REDIS).document(1, names)
    after = ContainerTemplate("g", "redis", replace(REDIS, **change)).document(1, names)  # type: ignore[arg-type]
    assert after.config_hash != before.config_hash


names_st = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12)


@given(
    image=names_st,
    env=st.lists(st.tuples(names_st, st.text(max_size=8)), max_size=3),
    instance=st.integers(min_value=1, max_value=10_000),
    volume=names_st,
    stack=st.sampled_from(["null", "s1", "ünï"]),
    memory=st.none() | st.integers(min_value=1, max_value=1 << 40),
    cpus=st.none() | st.floats(min_value=0.01, max_value=64, allow_nan=False),
)
def test_hash_is_the_canonical_json_of_the_config(
    image: str,
    env: list[tuple[str, str]],
    instance: int,
    volume: str,
    stack: str,
    memory: int | None,
    cpus: float | None,
) -> None:
    spec = replace(REDIS, image=image, environment=tuple(env), memory=memory, cpus=cpus)
    planned = ContainerTemplate("g", stack, spec).document(instance, {"data": volume})
    assert planned.config_hash == _hash(planned.document)
    assert ContainerSpec.model_validate(planned.document).model_dump(mode="json") == planned.document

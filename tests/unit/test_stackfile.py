"""The stack file loader against its fixtures: every valid one loads, every invalid one is pinned."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from moorage.errors import InvalidInput
from moorage.model.stack import (
    AffinityRule,
    DeployStrategy,
    Mount,
    MountKind,
    PortMapping,
    ServiceSpec,
    StackSpec,
    VolumeDecl,
)
from moorage.stackfile import StackFileError, StackFileIssue, load_stack, stack_from_dict, stack_to_dict

FIXTURES = Path(__file__).parent.parent / "fixtures" / "stacks"
VALID = sorted((FIXTURES / "valid").glob("*.yml"))
INVALID = sorted((FIXTURES / "invalid").glob("*.yml"))

ENV = {"REDIS_PASSWORD": "s3cret"}
GRID = "testgrid"


SERVICE_KEYS = (
    "affinity, command, cpus, depends_on, deploy, environment, image, instances, mem_limit, ports, volumes"
)
UNKNOWN_SCOPE = "Unknown scope 'everywhere', must be one of grid, stack, instance"
DRIVER_ON_EXTERNAL = (
    "an external volume is defined where it was created; to state the driver this stack expects of it, "
    "write external: {{name: {0}, driver: ...}}, or remove external: to make it a volume of this stack"
)
NAME_RULE = "use 1 to 63 lowercase letters, digits and '-', starting and ending with a letter or digit"
AFFINITY_FORMS = "node==NAME, node!=NAME, label==KEY=VALUE, label!=KEY=VALUE, label==KEY or label!=KEY"


# --- valid fixtures ---------------------------------------------------------------------------

SEED = StackSpec(
    name="redis",
    version="0.0.1",
    description="Just a simple Redis stack with volume",
    services=(
        ServiceSpec(
            name="redis",
            image="redis:local",
            command="redis-server --appendonly yes",
            mounts=(Mount(MountKind.NAMED, target="/data", source="redis-data"),),
        ),
    ),
    volumes=(VolumeDecl("redis-data", "redis-data"),),
)

FULL = StackSpec(
    name="shop",
    version="1.2",
    description="A web shop with a database and a cache",
    services=(
        ServiceSpec(
            name="db",
            image="postgres:16",
            environment=(("POSTGRES_DB", "shop"), ("POSTGRES_PORT", "5432"), ("POSTGRES_INITDB", "true")),
            mounts=(
                Mount(MountKind.NAMED, "/var/lib/postgresql/data", "db-data", "rw,nocopy"),
                Mount(MountKind.BIND, "/etc/localtime", "/etc/localtime", "ro"),
            ),
            affinity=(AffinityRule("label", True, "disk=ssd"), AffinityRule("node", False, "node-3")),
            strategy=DeployStrategy.HA,
            memory=1024**3,
            cpus=2.0,
        ),
        ServiceSpec(
            name="cache",
            image="redis:7-alpine",
            instances=0,
            mounts=(Mount(MountKind.ANONYMOUS, "/data"),),
            strategy=DeployStrategy.DAEMON,
            memory=256 * 1024**2,
        ),
        ServiceSpec(
            name="web",
            image="acme/shop-web:2.1",
            command="gunicorn shop.wsgi --bind 0.0.0.0:8000",
            instances=3,
            environment=(("DATABASE_URL", "postgres://db/shop"), ("EMPTY", ""), ("EQUATION", "a=b")),
            ports=(PortMapping(80, 8000), PortMapping(2222, 22), PortMapping(53, 53, "udp")),
            affinity=(AffinityRule("label", True, "zone"),),
            strategy=DeployStrategy.RANDOM,
            depends_on=("db", "cache"),
            memory=512 * 1024**2,
            cpus=0.5,
        ),
    ),
    volumes=(VolumeDecl("db-data", "db-data"),),
)

EXPECTED_VALID = {
    "seed-redis.yml": SEED,
    "full.yml": FULL,
    "minimal.yml": StackSpec(name="web", services=(ServiceSpec(name="web", image="nginx:1.25-alpine"),)),
    "external-name.yml": StackSpec(
        name="redis",
        services=(
            ServiceSpec(
                name="redis",
                image="redis:3.2-alpine",
                mounts=(Mount(MountKind.NAMED, "/data", "redis-data"),),
            ),
        ),
        volumes=(VolumeDecl("redis-data", "other-named-vol"),),
    ),
    "interpolated.yml": StackSpec(
        name="redis",
        services=(
            ServiceSpec(
                name="redis",
                image="redis:3.2-alpine",
                command='redis-server --requirepass s3cret --save "" --dir /data/$HOME',
                instances=2,
                environment=(("STACK_NAME", "redis"), ("GRID_NAME", GRID), ("PRICE", "$5")),
                mounts=(Mount(MountKind.NAMED, "/data", "redis-data"),),
            ),
        ),
        volumes=(VolumeDecl("redis-data", "redis-data"),),
    ),
}


def test_every_valid_fixture_is_pinned() -> None:
    assert {path.name for path in VALID} == set(EXPECTED_VALID)


@pytest.mark.parametrize("path", VALID, ids=[path.stem for path in VALID])
def test_valid_fixture_loads_to_the_expected_stack(path: Path) -> None:
    spec = load_stack(path.read_text(), env=ENV, grid=GRID, source=path.name)
    assert spec == EXPECTED_VALID[path.name]


@pytest.mark.parametrize("path", VALID, ids=[path.stem for path in VALID])
def test_valid_fixture_round_trips_through_json(path: Path) -> None:
    spec = load_stack(path.read_text(), env=ENV, grid=GRID)
    stored = json.loads(json.dumps(stack_to_dict(spec)))
    assert stack_from_dict(stored) == spec


@pytest.mark.parametrize("path", VALID, ids=[path.stem for path in VALID])
def test_normalized_yaml_is_itself_a_stack_file_for_the_same_stack(path: Path) -> None:
    spec = load_stack(path.read_text(), env=ENV, grid=GRID)
    text = yaml.safe_dump(stack_to_dict(spec), sort_keys=False).replace("$", "$$")
    assert load_stack(text, env={}, grid=GRID) == spec


def test_seed_stack_normalized_form_is_pinned() -> None:
    assert stack_to_dict(SEED) == {
        "stack": "redis",
        "version": "0.0.1",
        "description": "Just a simple Redis stack with volume",
        "services": {
            "redis": {
                "image": "redis:local",
                "command": "redis-server --appendonly yes",
                "instances": 1,
                "volumes": ["redis-data:/data"],
                "deploy": {"strategy": "ha"},
            }
        },
        "volumes": {"redis-data": {"external": True}},
    }


def test_full_stack_normalized_form_writes_sizes_and_ports_as_people_do() -> None:
    web = stack_to_dict(FULL)["services"]["web"]  # type: ignore[index]
    assert web["mem_limit"] == "512m"
    assert web["ports"] == ["80:8000", "2222:22", "53:53/udp"]
    assert web["environment"] == {"DATABASE_URL": "postgres://db/shop", "EMPTY": "", "EQUATION": "a=b"}
    assert stack_to_dict(FULL)["volumes"] == {"db-data": {"external": True}}


def test_external_volume_with_another_name_is_written_with_its_name() -> None:
    spec = EXPECTED_VALID["external-name.yml"]
    assert stack_to_dict(spec)["volumes"] == {"redis-data": {"external": {"name": "other-named-vol"}}}


def test_stack_from_dict_does_not_interpolate() -> None:
    spec = stack_from_dict(stack_to_dict(EXPECTED_VALID["interpolated.yml"]))
    assert dict(spec.services[0].environment)["PRICE"] == "$5"


def test_stack_from_dict_accepts_the_null_stack_of_stand_alone_services() -> None:
    spec = stack_from_dict({"stack": "null", "services": {"redis": {"image": "redis:7-alpine"}}})
    assert spec.name == "null"


def test_stack_from_dict_reports_a_broken_stored_stack() -> None:
    with pytest.raises(StackFileError) as caught:
        stack_from_dict({"stack": "redis", "services": {"redis": {"instances": 1}}})
    assert caught.value.errors == {
        "services.redis.image": "missing; every service needs an image to run, e.g. image: redis:7-alpine"
    }
    assert caught.value.source == "<stored stack>"


# --- invalid fixtures: every one pins its path and exact wording ------------------------------

INVALID_CASES = [
    pytest.param(
        "bad-mount-spec.yml",
        [("services.redis.volumes[0]", "volume definition not in right format: redis-data")],
        id="bad-mount-spec",
    ),
    pytest.param(
        "bad-mount-flags.yml",
        [("services.redis.volumes[0]", "volume definition not in right format: /srv/redis:/data:ro,rw")],
        id="bad-mount-flags",
    ),
    pytest.param(
        "undeclared-volume.yml",
        [
            (
                "services.redis.volumes[0]",
                "volume 'redis-data' is not declared in the top-level volumes: section; "
                'add "volumes: {redis-data: {external: true}}"',
            )
        ],
        id="undeclared-volume",
    ),
    pytest.param(
        "duplicate-mount-path.yml",
        [
            (
                "services.redis.volumes[1]",
                "container path '/data' is already mounted by services.redis.volumes[0]; "
                "mount each container path only once",
            )
        ],
        id="duplicate-mount-path",
    ),
    pytest.param(
        "unknown-key.yml",
        [("services.redis.restart", f"unknown key 'restart'; the keys allowed here are: {SERVICE_KEYS}")],
        id="unknown-key",
    ),
    pytest.param(
        "misspelled-key.yml",
        [
            (
                "services.redis.imgae",
                f"unknown key 'imgae' (did you mean 'image'?); the keys allowed here are: {SERVICE_KEYS}",
            )
        ],
        id="misspelled-key-is-not-also-reported-missing",
    ),
    pytest.param(
        "unknown-deploy-key.yml",
        [
            (
                "services.web.deploy.wait_for_port",
                "unknown key 'wait_for_port'; the keys allowed here are: strategy",
            )
        ],
        id="unknown-deploy-key",
    ),
    pytest.param(
        "wrong-type.yml",
        [("services.redis.instances", "must be a whole number from 0 to 1000, not 'three'")],
        id="wrong-type",
    ),
    pytest.param(
        "bad-interpolation.yml",
        [
            (
                "services.redis.image",
                "malformed variable reference '${REDIS_TAG'; "
                "write ${NAME}, ${NAME:-default} or $NAME, and $$ for a literal $",
            )
        ],
        id="bad-interpolation",
    ),
    pytest.param(
        "undefined-variable.yml",
        [
            (
                "services.redis.image",
                "variable 'REDIS_TAG' is not set; set it in the environment or give a default with "
                "${REDIS_TAG:-default}",
            )
        ],
        id="undefined-variable",
    ),
    pytest.param(
        "missing-image.yml",
        [
            (
                "services.redis.image",
                "missing; every service needs an image to run, e.g. image: redis:7-alpine",
            )
        ],
        id="missing-image",
    ),
    pytest.param(
        "bad-affinity.yml",
        [("services.redis.affinity[0]", f"'node=node-1' is not an affinity rule; use {AFFINITY_FORMS}")],
        id="bad-affinity",
    ),
    pytest.param(
        "bad-port.yml",
        [("services.web.ports[0]", "'80' needs a host port to publish on; write HOST:80, e.g. \"80:80\"")],
        id="bad-port-without-host-port",
    ),
    pytest.param(
        "port-out-of-range.yml",
        [("services.web.ports[0]", "'80800:80': host port 80800 is out of range; ports are 1 to 65535")],
        id="port-out-of-range",
    ),
    pytest.param(
        "duplicate-host-port.yml",
        [
            (
                "services.web.ports[1]",
                "host port 8080/tcp is already published by services.web.ports[0]; publish each host port only once",
            )
        ],
        id="duplicate-host-port",
    ),
    pytest.param(
        "bad-strategy.yml",
        [("services.web.deploy.strategy", "unknown deploy strategy 'spread'; use one of ha, daemon, random")],
        id="bad-strategy",
    ),
    pytest.param(
        "depends-on-cycle.yml",
        [
            (
                "services.db.depends_on[0]",
                "depends_on forms a cycle: web -> api -> db -> web; remove one of these dependencies",
            )
        ],
        id="depends-on-cycle",
    ),
    pytest.param(
        "unknown-dependency.yml",
        [
            (
                "services.web.depends_on[0]",
                "unknown service 'database'; depends_on can name only services of this stack: web, db",
            )
        ],
        id="unknown-dependency",
    ),
    pytest.param(
        "variables.yml",
        [
            (
                "variables",
                "Kontena's variables: section is not supported yet; remove it, and pass values through the "
                "environment with ${NAME} or ${NAME:-default} instead",
            )
        ],
        id="variables-not-supported",
    ),
    pytest.param(
        "internal-volume.yml",
        [("volumes.redis-data.scope", UNKNOWN_SCOPE)],
        id="stack-volume-unknown-scope",
    ),
    pytest.param(
        "volume-with-driver.yml",
        [("volumes.redis-data.driver", DRIVER_ON_EXTERNAL.format("redis-data"))],
        id="driver-on-an-external-volume",
    ),
    pytest.param(
        "not-yaml.yml",
        [
            (
                "not-yaml.yml",
                "not valid YAML at line 5, column 4: expected <block end>, but found '<block mapping start>' "
                "(while parsing a block mapping at line 3, column 3); check the indentation and quoting there",
            )
        ],
        id="not-yaml",
    ),
    pytest.param(
        "duplicate-key.yml",
        [
            (
                "services.redis.image",
                "is given twice in the same mapping (lines 4 and 6); "
                "YAML would keep only the last one, so remove one of them",
            )
        ],
        id="duplicate-key",
    ),
    pytest.param(
        "bad-service-name.yml",
        [("services.Redis_Cache", f"'Redis_Cache' is not a valid service name: {NAME_RULE}")],
        id="bad-service-name",
    ),
    pytest.param(
        "env-without-equals.yml",
        [
            (
                "services.web.environment[0]",
                "'DEBUG' is not NAME=value; write it as NAME=value (NAME= for an empty value)",
            )
        ],
        id="env-without-equals",
    ),
    pytest.param(
        "bad-memory.yml",
        [
            (
                "services.web.mem_limit",
                "'512 megs' is not a memory size; write a number of bytes, or a number with k, m, g or t, "
                "e.g. 256m or 1g",
            )
        ],
        id="bad-memory",
    ),
    pytest.param(
        "many-problems.yml",
        [
            ("stack", f"'Shop' is not a valid stack name: {NAME_RULE}"),
            (
                "services.web.image",
                "variable 'WEB_TAG' is not set; set it in the environment or give a default with "
                "${WEB_TAG:-default}",
            ),
            ("services.web.instances", "must be a whole number from 0 to 1000, not '-1'"),
            (
                "services.web.volumes[0]",
                "volume 'uploads' is not declared in the top-level volumes: section; "
                'add "volumes: {uploads: {external: true}}"',
            ),
            ("services.web.volumes[1]", "volume definition not in right format: static"),
            ("services.web.ports[0]", "'80' needs a host port to publish on; write HOST:80, e.g. \"80:80\""),
            (
                "services.web.depends_on[0]",
                "depends_on forms a cycle: web -> web; remove one of these dependencies",
            ),
            (
                "services.db.deploy.strategy",
                "unknown deploy strategy 'spread'; use one of ha, daemon, random",
            ),
            ("volumes.data.scope", UNKNOWN_SCOPE),
        ],
        id="many-problems-all-reported-in-file-order",
    ),
]


def test_every_invalid_fixture_is_pinned() -> None:
    assert {path.name for path in INVALID} == {case.values[0] for case in INVALID_CASES}


@pytest.mark.parametrize(("fixture", "expected"), INVALID_CASES)
def test_invalid_fixture_reports_exactly(fixture: str, expected: list[tuple[str, str]]) -> None:
    text = (FIXTURES / "invalid" / fixture).read_text()
    with pytest.raises(StackFileError) as caught:
        load_stack(text, env=ENV, grid=GRID, source=fixture)
    assert [(issue.path, issue.message) for issue in caught.value.issues] == expected


# --- the error object -------------------------------------------------------------------------


def test_stack_file_error_is_invalid_input_with_errors_by_path_and_a_readable_message() -> None:
    text = (FIXTURES / "invalid" / "many-problems.yml").read_text()
    with pytest.raises(StackFileError) as caught:
        load_stack(text, env={}, grid=GRID, source="shop.yml")
    error = caught.value
    assert isinstance(error, InvalidInput)
    assert error.status == 422
    assert error.errors["services.web.volumes[1]"] == "volume definition not in right format: static"
    assert len(error.errors) == len(error.issues) == 9
    lines = error.message.splitlines()
    assert lines[0] == "shop.yml is not a valid stack file (9 problems):"
    assert lines[1] == f"  stack: 'Shop' is not a valid stack name: {NAME_RULE}"
    assert str(error) == error.message
    assert error.payload() == error.errors


def test_single_issue_message_says_one_problem() -> None:
    error = StackFileError([StackFileIssue("services.app.image", "missing")], source="a.yml")
    assert error.message == "a.yml is not a valid stack file (1 problem):\n  services.app.image: missing"

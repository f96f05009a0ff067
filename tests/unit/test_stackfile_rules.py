"""Stack file rules one at a time: what each key accepts and the exact wording when it does not."""

from __future__ import annotations

import textwrap

import pytest

from moorage.model.stack import (
    AffinityRule,
    DeployStrategy,
    PortMapping,
    StackSpec,
    VolumeDecl,
)
from moorage.stackfile import StackFileError, load_stack

ENV = {"REDIS_PASSWORD": "s3cret"}
GRID = "testgrid"


def load(text: str, *, env: dict[str, str] | None = None, name: str | None = None) -> StackSpec:
    return load_stack(textwrap.dedent(text), env=ENV if env is None else env, grid=GRID, name=name)


def issues_of(
    text: str, *, env: dict[str, str] | None = None, name: str | None = None
) -> list[tuple[str, str]]:
    with pytest.raises(StackFileError) as caught:
        load(text, env=env, name=name)
    return [(issue.path, issue.message) for issue in caught.value.issues]


def service(body: str) -> str:
    """A stack with one service ``app`` whose keys (besides image) are ``body``."""
    return "stack: demo\nservices:\n  app:\n    image: busybox\n" + textwrap.indent(
        textwrap.dedent(body), "    "
    )


NAME_RULE = "use 1 to 63 lowercase letters, digits and '-', starting and ending with a letter or digit"
AFFINITY_FORMS = "node==NAME, node!=NAME, label==KEY=VALUE, label!=KEY=VALUE, label==KEY or label!=KEY"


# --- smaller cases, one rule each -------------------------------------------------------------


SERVICE_CASES = [
    pytest.param(
        "command: [sh, -c]", "services.app.command", "must be a string, not a list", id="command-list"
    ),
    pytest.param(
        "instances: 1001",
        "services.app.instances",
        "must be a whole number from 0 to 1000, not '1001'",
        id="instances-too-many",
    ),
    pytest.param(
        "instances: true",
        "services.app.instances",
        "must be a whole number from 0 to 1000, not the boolean true",
        id="instances-bool",
    ),
    pytest.param(
        "cpus: 0",
        "services.app.cpus",
        "must be a number greater than 0, such as 0.5 or 2, not '0'",
        id="cpus-0",
    ),
    pytest.param(
        "cpus: .inf",
        "services.app.cpus",
        "must be a number greater than 0, such as 0.5 or 2, not '.inf'",
        id="cpus-infinite",
    ),
    pytest.param(
        "volumes: redis-data:/data",
        "services.app.volumes",
        "must be a list of mount specs such as - redis-data:/data, not 'redis-data:/data'",
        id="volumes-not-a-list",
    ),
    pytest.param(
        "volumes: [{source: x}]",
        "services.app.volumes[0]",
        "must be a mount spec string, not a mapping",
        id="volume-item-mapping",
    ),
    pytest.param(
        "volumes: ['/data:ro']",
        "services.app.volumes[0]",
        "volume definition not in right format: /data:ro",
        id="anonymous-with-flags",
    ),
    pytest.param(
        "volumes: ['data:/srv:nocopy,rw,nocopy']",
        "services.app.volumes[0]",
        "volume definition not in right format: data:/srv:nocopy,rw,nocopy",
        id="repeated-flag",
    ),
    pytest.param(
        "ports: ['127.0.0.1:80:80']",
        "services.app.ports[0]",
        '\'127.0.0.1:80:80\' is not a port mapping; write HOST:CONTAINER, e.g. "8080:80" or "53:53/udp"',
        id="port-with-ip",
    ),
    pytest.param(
        "ports: [80]",
        "services.app.ports[0]",
        "'80' needs a host port to publish on; write HOST:80, e.g. \"80:80\"",
        id="port-bare-int",
    ),
    pytest.param(
        "ports: ['8080:0']",
        "services.app.ports[0]",
        "'8080:0': container port 0 is out of range; ports are 1 to 65535",
        id="port-zero",
    ),
    pytest.param(
        "ports: ['5353:53/sctp']",
        "services.app.ports[0]",
        "'5353:53/sctp': protocol 'sctp' is not supported; use tcp or udp",
        id="port-protocol",
    ),
    pytest.param(
        "affinity: ['service==db']",
        "services.app.affinity[0]",
        f"'service==db' is not an affinity rule; use {AFFINITY_FORMS}",
        id="affinity-kontena-service-subject",
    ),
    pytest.param(
        "affinity: ['label==zone=']",
        "services.app.affinity[0]",
        f"'label==zone=' is not an affinity rule; use {AFFINITY_FORMS}",
        id="affinity-empty-label-value",
    ),
    pytest.param(
        "deploy: ha",
        "services.app.deploy",
        "must be a mapping such as strategy: ha, not 'ha'",
        id="deploy-text",
    ),
    pytest.param(
        "environment: FOO=1",
        "services.app.environment",
        "must be a list of NAME=value strings or a mapping of NAME: value, not 'FOO=1'",
        id="environment-text",
    ),
    pytest.param(
        "environment: ['=1']",
        "services.app.environment[0]",
        "'=1' is not NAME=value; write it as NAME=value (NAME= for an empty value)",
        id="environment-no-name",
    ),
    pytest.param(
        "environment: [A=1, A=2]",
        "services.app.environment[1]",
        "'A' is already set by services.app.environment[0]; set each variable once",
        id="environment-twice",
    ),
    pytest.param(
        "environment: {A: }",
        "services.app.environment.A",
        'has no value; write A: "" for an empty value',
        id="environment-null",
    ),
    pytest.param(
        "environment: {A: [1]}",
        "services.app.environment.A",
        "must be a string, number or boolean, not a list",
        id="environment-list-value",
    ),
    pytest.param(
        "mem_limit: 1m",
        "services.app.mem_limit",
        "'1m' is less than 6m, the smallest memory limit Docker accepts",
        id="memory-too-small",
    ),
    pytest.param(
        "mem_limit: 9999999t",
        "services.app.mem_limit",
        "'9999999t' is too large for a memory size",
        id="memory-too-large",
    ),
    pytest.param(
        "mem_limit: true",
        "services.app.mem_limit",
        "must be a memory size such as 256m or 1g, or a number of bytes, not the boolean true",
        id="memory-bool",
    ),
    pytest.param(
        "depends_on: [app]",
        "services.app.depends_on[0]",
        "depends_on forms a cycle: app -> app; remove one of these dependencies",
        id="depends-on-itself",
    ),
    pytest.param(
        "true: x",
        "services.app.true",
        "this key is read as the boolean true, not a string; put the key in quotes",
        id="key-not-a-string",
    ),
]


@pytest.mark.parametrize(("body", "path", "message"), SERVICE_CASES)
def test_service_rule(body: str, path: str, message: str) -> None:
    assert issues_of(service(body)) == [(path, message)]


STACK_CASES = [
    pytest.param(
        "",
        "<stack file>",
        "the file is empty; a stack file needs stack: and services: at the top level",
        id="empty-file",
    ),
    pytest.param(
        "- stack: redis",
        "<stack file>",
        "must be a mapping with stack: and services: at the top level, not a list",
        id="top-level-list",
    ),
    pytest.param(
        "services: {app: {image: busybox}}",
        "stack",
        "missing; name the stack, e.g. stack: myuser/redis",
        id="stack-missing",
    ),
    pytest.param(
        "stack: redis",
        "services",
        "missing; define the stack's services, e.g. services: {redis: {image: redis:7-alpine}}",
        id="services-missing",
    ),
    pytest.param(
        "stack: redis\nservices: {}",
        "services",
        "defines no services; add at least one, e.g. redis: {image: redis:7-alpine}",
        id="services-empty",
    ),
    pytest.param(
        "stack: redis\nservices: [redis]",
        "services",
        "must be a mapping of service names to services, not a list",
        id="services-list",
    ),
    pytest.param(
        "stack: redis\nservices: {redis: redis:7}",
        "services.redis",
        "must be a mapping with at least image:, not 'redis:7'",
        id="service-not-mapping",
    ),
    pytest.param(
        "stack: null\nservices: {app: {image: busybox}}",
        "stack",
        "missing; name the stack, e.g. stack: myuser/redis",
        id="stack-yaml-null",
    ),
    pytest.param(
        "stack: 'null'\nservices: {app: {image: busybox}}",
        "stack",
        "'null' is reserved for services created outside a stack; choose another stack name",
        id="stack-named-null",
    ),
    pytest.param(
        "stack: a/b/c\nservices: {app: {image: busybox}}",
        "stack",
        "'a/b/c' is not a valid stack: write NAME or OWNER/NAME",
        id="stack-two-slashes",
    ),
    pytest.param(
        f"stack: {'x' * 64}\nservices: {{app: {{image: busybox}}}}",
        "stack",
        f"'{'x' * 64}' is not a valid stack name: {NAME_RULE}",
        id="stack-name-too-long",
    ),
    pytest.param(
        "stack: redis\nversion: [1]\nservices: {app: {image: busybox}}",
        "version",
        "must be a string such as 0.0.1, not a list",
        id="version-list",
    ),
    pytest.param(
        "stack: redis\nservices: {app: {image: 'redis 7'}}",
        "services.app.image",
        "'redis 7' is not an image reference; write NAME[:TAG], e.g. redis:7-alpine",
        id="image-with-space",
    ),
    pytest.param(
        "stack: redis\nservices: {'my.app': {image: busybox}}",
        'services["my.app"]',
        f"'my.app' is not a valid service name: {NAME_RULE}",
        id="service-name-with-dot-quoted-in-path",
    ),
    pytest.param(
        "stack: redis\nservices: {app: {image: busybox}}\nvolumes: [data]",
        "volumes",
        "must be a mapping of volume names to declarations, e.g. data: {scope: instance}, not a list",
        id="volumes-list",
    ),
    pytest.param(
        "stack: redis\nservices: {app: {image: busybox}}\nvolumes: {data: {external: yes-please}}",
        "volumes.data.external",
        "must be true, false or a mapping with name:, not 'yes-please'",
        id="external-text",
    ),
    pytest.param(
        "stack: redis\nservices: {app: {image: busybox}}\nvolumes: {data: {external: {}}}",
        "volumes.data.external.name",
        "missing; give the name of the grid volume, e.g. external: {name: redis-data}",
        id="external-without-name",
    ),
    pytest.param(
        "stack: redis\nservices: {app: {image: busybox}}\nvolumes: {data: {external: {name: 'a.b'}}}",
        "volumes.data.external.name",
        "'a.b' is not a valid volume name: use at least two characters, letters, digits, '_' or '-', "
        "starting with a letter or digit",
        id="external-name-invalid",
    ),
    pytest.param(
        "stack: redis\nservices: {app: {image: busybox}}\nvolumes: {d: {external: true}}",
        "volumes.d",
        "'d' cannot name a volume in mounts: use at least two characters, letters, digits, '_' or '-', "
        "starting with a letter or digit",
        id="volume-alias-invalid",
    ),
    pytest.param(
        "stack: redis\nservices: {app: {image: busybox}}\nvolumes: {data: {external: true, driver: rexray}}",
        "volumes.data.driver",
        "an external volume is defined where it was created; to state the driver this stack expects of "
        "it, write external: {name: data, driver: ...}, or remove external: to make it a volume of this stack",
        id="driver-beside-external",
    ),
    pytest.param(
        "stack: redis\nservices: {app: {image: busybox}}\nx-defaults: {}",
        "x-defaults",
        "unknown key 'x-defaults'; the keys allowed here are: description, services, stack, version, volumes",
        id="top-level-unknown-key",
    ),
    pytest.param(
        "stack: redis\nservices: {app: {image: busybox, volumes: [data:/data]}}\nvolumes: {data: {external: 'no!'}}",
        "volumes.data.external",
        "must be true, false or a mapping with name:, not 'no!'",
        id="invalid-declaration-is-not-also-reported-undeclared",
    ),
]


@pytest.mark.parametrize(("text", "path", "message"), STACK_CASES)
def test_stack_rule(text: str, path: str, message: str) -> None:
    assert issues_of(text) == [(path, message)]


ACCEPTED_CASES = [
    pytest.param("instances: '3'", "instances", 3, id="instances-from-text"),
    pytest.param("cpus: '1.5'", "cpus", 1.5, id="cpus-from-text"),
    pytest.param("cpus: 1", "cpus", 1.0, id="cpus-int"),
    pytest.param("mem_limit: 1.5g", "memory", 1536 * 1024**2, id="memory-fraction"),
    pytest.param("mem_limit: 64MiB", "memory", 64 * 1024**2, id="memory-mib"),
    pytest.param("mem_limit: 6291456", "memory", 6 * 1024**2, id="memory-bytes"),
    pytest.param("command:", "command", None, id="null-optional-is-absent"),
    pytest.param(
        "environment: {A: 1.5, B: false}", "environment", (("A", "1.5"), ("B", "false")), id="env-scalars"
    ),
    pytest.param("depends_on: []", "depends_on", (), id="depends-on-empty"),
    pytest.param("ports: ['8080:80/TCP']", "ports", (PortMapping(8080, 80),), id="port-protocol-case"),
    pytest.param(
        "affinity: ['label!=zone']", "affinity", (AffinityRule("label", False, "zone"),), id="label-absent"
    ),
    pytest.param("deploy: {strategy: daemon}", "strategy", DeployStrategy.DAEMON, id="strategy"),
    pytest.param(
        "environment: {VERSION: 1.10, MODE: 0755, DEBUG: yes, HEX: 0x1F, ON: on}",
        "environment",
        (("VERSION", "1.10"), ("MODE", "0755"), ("DEBUG", "yes"), ("HEX", "0x1F"), ("ON", "on")),
        id="env-values-read-as-written-not-as-yaml-1.1",
    ),
]


@pytest.mark.parametrize(("body", "field", "value"), ACCEPTED_CASES)
def test_service_field_accepts(body: str, field: str, value: object) -> None:
    spec = load(service(body))
    assert getattr(spec.services[0], field) == value


def test_external_accepts_true_as_text_after_interpolation() -> None:
    text = "stack: s\nservices: {app: {image: busybox}}\nvolumes: {data: {external: '${EXT:-true}'}}"
    assert load(text).volumes == (VolumeDecl("data", "data"),)


def test_version_is_read_as_written() -> None:
    assert load("stack: s\nversion: 1.10\nservices: {app: {image: busybox}}").version == "1.10"


def test_base_60_looking_port_stays_a_port() -> None:
    spec = load(service("ports:\n  - 22:22\n  - 2222:22\n"))
    assert spec.services[0].ports == (PortMapping(22, 22), PortMapping(2222, 22))


# --- names, STACK and GRID --------------------------------------------------------------------


def test_stack_name_is_the_part_after_the_owner() -> None:
    assert load("stack: jussi/redis\nservices: {app: {image: busybox}}").name == "redis"


def test_name_override_replaces_the_file_name_and_is_what_stack_means() -> None:
    text = "stack: jussi/redis\nservices: {app: {image: busybox, command: 'echo $STACK in $GRID'}}"
    spec = load(text, name="cache")
    assert spec.name == "cache"
    assert spec.services[0].command == f"echo cache in {GRID}"


def test_stack_and_grid_win_over_the_environment() -> None:
    text = "stack: redis\nservices: {app: {image: busybox, command: '$STACK $GRID'}}"
    assert load(text, env={"STACK": "x", "GRID": "y"}).services[0].command == f"redis {GRID}"


def test_invalid_name_override_is_reported_as_name() -> None:
    assert issues_of("stack: redis\nservices: {app: {image: busybox}}", name="Bad_Name") == [
        ("name", f"'Bad_Name' is not a valid stack name: {NAME_RULE}")
    ]


def test_stack_value_may_itself_use_the_environment() -> None:
    text = "stack: ${OWNER}/${NAME:-web}\nservices: {app: {image: busybox, command: $STACK}}"
    spec = load(text, env={"OWNER": "jussi"})
    assert (spec.name, spec.services[0].command) == ("web", "web")

"""Step 3, validate: the shape of the data - known keys, required keys, value types.

Turns the interpolated data into a ``StackDoc``. Every problem goes to ``issues``; a value with a
problem is left out (or given its default) and validation goes on, so all problems are reported.
Numbers, booleans and ``true``/``false`` may also arrive as strings (``instances: ${COUNT:-2}``
is the string ``"2"`` after interpolation) and are read as what they say.
"""

from __future__ import annotations

from moorage.model.names import control_character_error
from moorage.model.quoting import shown
from moorage.stackfile.document import At, ExternalDoc, OwnedDoc, ServiceDoc, StackDoc, VolumeDoc
from moorage.stackfile.fields import Fields, boolean, describe_value, string_keyed
from moorage.stackfile.issues import Issues
from moorage.stackfile.paths import ROOT, item_path, key_path

__all__ = [
    "DEPLOY_KEYS",
    "EXTERNAL_KEYS",
    "MAX_INSTANCES",
    "MAX_SERVICES",
    "OWNED_KEYS",
    "SERVICE_KEYS",
    "TOP_LEVEL_KEYS",
    "VOLUME_KEYS",
    "validate",
]

TOP_LEVEL_KEYS = ("stack", "version", "description", "services", "volumes")
SERVICE_KEYS = (
    "image",
    "command",
    "environment",
    "instances",
    "volumes",
    "ports",
    "affinity",
    "deploy",
    "depends_on",
    "mem_limit",
    "cpus",
)
DEPLOY_KEYS = ("strategy",)
OWNED_KEYS = ("scope", "driver", "driver_opts", "labels", "topology", "backup", "on_node_lost")
BACKUP_KEYS = ("schedule", "keep")
VOLUME_KEYS = ("external", *OWNED_KEYS)
EXTERNAL_KEYS = ("name", "scope", "driver")

MAX_INSTANCES = 1000
"""The most instances one service may ask for."""

MAX_SERVICES = 1000
"""The most services one stack may define; a larger one is refused before any service is read."""

VARIABLES_NOT_SUPPORTED = (
    "Kontena's variables: section is not supported yet; remove it, and pass values through "
    "the environment with ${NAME} or ${NAME:-default} instead"
)
NO_SERVICES = "defines no services; add at least one, e.g. redis: {image: redis:7-alpine}"
STACK_MISSING = "missing; name the stack, e.g. stack: myuser/redis"
SERVICES_MISSING = "missing; define the stack's services, e.g. services: {redis: {image: redis:7-alpine}}"
IMAGE_MISSING = "missing; every service needs an image to run, e.g. image: redis:7-alpine"
EXTERNAL_NAME_MISSING = "missing; give the name of the grid volume, e.g. external: {name: redis-data}"


def owned_key_on_external(key: str, alias: str) -> str:
    if key == "backup":
        return (
            "an external volume's backups are set where it was made: 'moorage volume update "
            f"{alias} --backup-schedule CRON'; remove backup: here, or remove external: to make it "
            "a volume of this stack"
        )
    if key in ("scope", "driver"):
        return (
            f"an external volume is defined where it was created; to state the {key} this stack "
            f"expects of it, write external: {{name: {alias}, {key}: ...}}, or remove external: "
            "to make it a volume of this stack"
        )
    return (
        f"{key}: defines a volume of this stack, but this one is external (made with "
        "'moorage volume create'); remove external: to make it the stack's own, or remove this key"
    )


def validate(raw: object, issues: Issues, *, source: str) -> StackDoc:
    """The ``StackDoc`` in ``raw``, with every shape problem recorded in ``issues``."""
    if raw is None:
        issues.add(source, "the file is empty; a stack file needs stack: and services: at the top level")
        return StackDoc(stack=None, version=None, description=None, services=(), volumes=())
    if not isinstance(raw, dict):
        expected = "a mapping with stack: and services: at the top level"
        issues.add(source, f"must be {expected}, not {describe_value(raw)}")
        return StackDoc(stack=None, version=None, description=None, services=(), volumes=())
    top = dict(raw)
    if "variables" in top:
        del top["variables"]
        issues.add("variables", VARIABLES_NOT_SUPPORTED)
    fields = Fields(top, ROOT, TOP_LEVEL_KEYS, issues)
    version = fields.value("version")
    if version is not None and not isinstance(version, str):
        version = _version_text(version, fields.path("version"), issues)
    return StackDoc(
        stack=fields.string_at("stack", missing=STACK_MISSING),
        version=version,
        description=fields.string("description"),
        services=_services(fields, issues),
        volumes=_volumes(fields, issues),
    )


def _version_text(value: object, path: str, issues: Issues) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    issues.add(path, f"must be a string such as 0.0.1, not {describe_value(value)}")
    return None


def _services(top: Fields, issues: Issues) -> tuple[ServiceDoc, ...]:
    services = top.mapping_value(
        "services", expected="a mapping of service names to services", missing=SERVICES_MISSING
    )
    if services is None:
        return ()
    if not services:
        issues.add(top.path("services"), NO_SERVICES)
    if len(services) > MAX_SERVICES:
        issues.add(
            top.path("services"),
            f"defines {len(services)} services; a stack may define at most {MAX_SERVICES}: "
            "split it into several stacks",
        )
        return ()
    docs = []
    for name, value in string_keyed(services, top.path("services"), issues).items():
        docs.append(_service(name, value, key_path(top.path("services"), name), issues))
    return tuple(docs)


def _service(name: str, value: object, path: str, issues: Issues) -> ServiceDoc:
    if not isinstance(value, dict):
        issues.add(path, f"must be a mapping with at least image:, not {describe_value(value)}")
        return ServiceDoc(name=At(path, name))
    fields = Fields(value, path, SERVICE_KEYS, issues)
    deploy = fields.mapping("deploy", DEPLOY_KEYS, expected="a mapping such as strategy: ha")
    return ServiceDoc(
        name=At(path, name),
        image=fields.string("image", missing=IMAGE_MISSING) or "",
        command=fields.string("command"),
        environment=_environment(fields.value("environment"), fields.path("environment"), issues),
        instances=fields.whole_number("instances", default=1, maximum=MAX_INSTANCES),
        volumes=fields.strings(
            "volumes", expected="a list of mount specs such as - redis-data:/data", item="a mount spec string"
        ),
        ports=fields.strings(
            "ports", expected='a list of port mappings such as - "8080:80"', item='a string such as "8080:80"'
        ),
        affinity=fields.strings(
            "affinity",
            expected="a list of rules such as - node==node-1",
            item="a string such as node==node-1",
        ),
        strategy=deploy.string_at("strategy") if deploy else None,
        depends_on=fields.strings(
            "depends_on", expected="a list of service names of this stack", item="a service name"
        ),
        mem_limit=fields.string_or_whole_number(
            "mem_limit", expected="a memory size such as 256m or 1g, or a number of bytes"
        ),
        cpus=fields.positive_number("cpus"),
    )


def _environment(value: object, path: str, issues: Issues) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if isinstance(value, list):
        return _environment_list(value, path, issues)
    if isinstance(value, dict):
        return _environment_mapping(value, path, issues)
    expected = "a list of NAME=value strings or a mapping of NAME: value"
    issues.add(path, f"must be {expected}, not {describe_value(value)}")
    return ()


def _environment_list(items: list[object], path: str, issues: Issues) -> tuple[tuple[str, str], ...]:
    pairs: list[tuple[str, str]] = []
    first_set: dict[str, str] = {}
    for index, item in enumerate(items):
        item_at = item_path(path, index)
        if not isinstance(item, str):
            issues.add(item_at, f"must be a string such as NAME=value, not {describe_value(item)}")
            continue
        key, equals, text = item.partition("=")
        if (bad := control_character_error(item)) is not None:
            issues.add(item_at, bad)
        elif not equals or not key:
            issues.add(
                item_at,
                f"'{shown(item)}' is not NAME=value; write it as NAME=value (NAME= for an empty value)",
            )
        elif key in first_set:
            issues.add(item_at, f"'{shown(key)}' is already set by {first_set[key]}; set each variable once")
        else:
            first_set[key] = item_at
            pairs.append((key, text))
    return tuple(pairs)


def _environment_mapping(
    mapping: dict[object, object], path: str, issues: Issues
) -> tuple[tuple[str, str], ...]:
    pairs: list[tuple[str, str]] = []
    for key, value in string_keyed(mapping, path, issues).items():
        key_at = key_path(path, key)
        if not key or "=" in key:
            issues.add(key_at, f"'{shown(key)}' cannot be a variable name: it is empty or contains '='")
        elif (bad := control_character_error(key) or control_character_error(str(value))) is not None:
            issues.add(key_at, bad)
        elif value is None:
            issues.add(key_at, f'has no value; write {shown(key)}: "" for an empty value')
        elif isinstance(value, bool):
            pairs.append((key, "true" if value else "false"))
        elif isinstance(value, str | int | float):
            pairs.append((key, str(value)))
        else:
            issues.add(key_at, f"must be a string, number or boolean, not {describe_value(value)}")
    return tuple(pairs)


def _volumes(top: Fields, issues: Issues) -> tuple[VolumeDoc, ...]:
    volumes = top.mapping_value(
        "volumes", expected="a mapping of volume names to declarations, e.g. data: {scope: instance}"
    )
    if volumes is None:
        return ()
    docs = []
    for alias, entry in string_keyed(volumes, top.path("volumes"), issues).items():
        path = key_path(top.path("volumes"), alias)
        docs.append(_volume(At(path, alias), entry, issues))
    return tuple(docs)


def _volume(alias: At[str], entry: object, issues: Issues) -> VolumeDoc:
    """A top-level ``volumes:`` entry: external (a grid volume made elsewhere) or the stack's own."""
    path = alias.path
    if entry is None:
        entry = {}
    if not isinstance(entry, dict):
        issues.add(
            path,
            f"must be a mapping such as external: true or scope: instance, not {describe_value(entry)}",
        )
        return VolumeDoc(alias)
    fields = Fields(entry, path, VOLUME_KEYS, issues)
    external = fields.value("external")
    flag = boolean(external)
    if external is None or flag is False:
        return VolumeDoc(alias, owned=_owned(fields, path, issues))
    for key in OWNED_KEYS:
        if fields.value(key) is not None:
            issues.add(fields.path(key), owned_key_on_external(key, alias.value))
    if flag is True:
        return VolumeDoc(alias, external=ExternalDoc(At(fields.path("external"), alias.value)))
    if not isinstance(external, dict):
        expected = "true, false or a mapping with name:"
        issues.add(fields.path("external"), f"must be {expected}, not {describe_value(external)}")
        return VolumeDoc(alias)
    stated = Fields(external, fields.path("external"), EXTERNAL_KEYS, issues)
    name = stated.string_at("name", missing=EXTERNAL_NAME_MISSING)
    if name is None:
        return VolumeDoc(alias)
    return VolumeDoc(
        alias, external=ExternalDoc(name, scope=stated.string_at("scope"), driver=stated.string_at("driver"))
    )


def _owned(fields: Fields, path: str, issues: Issues) -> OwnedDoc:
    return OwnedDoc(
        path=path,
        scope=fields.string_at("scope"),
        driver=fields.string_at("driver"),
        driver_opts=_string_map(fields.value("driver_opts"), fields.path("driver_opts"), issues),
        labels=_string_map(fields.value("labels"), fields.path("labels"), issues),
        topology=fields.string_at("topology"),
        on_node_lost=fields.string_at("on_node_lost"),
        **_backup(fields, issues),
    )


def _backup(fields: Fields, issues: Issues) -> dict[str, At[str] | None]:
    """``backup: {schedule: '0 3 * * *', keep: daily=7,weekly=4}`` (``keep`` also as a mapping
    ``{daily: 7, weekly: 4}``): the two settings of ``moorage volume create --backup-*``."""
    backup = fields.mapping(
        "backup", BACKUP_KEYS, expected="a mapping such as {schedule: '0 3 * * *', keep: daily=7}"
    )
    if backup is None:
        return {}
    keep: At[str] | None = None
    value = backup.value("keep")
    if isinstance(value, dict):
        pairs = _string_map(value, backup.path("keep"), issues)
        keep = At(backup.path("keep"), ",".join(f"{key}={n}" for key, n in pairs))
    elif value is not None:
        keep = backup.string_at("keep")  # (a number is reported there: it is no KEY=N)
    return {"backup_schedule": backup.string_at("schedule"), "backup_keep": keep}


def _string_map(value: object, path: str, issues: Issues) -> tuple[tuple[str, str], ...]:
    """A mapping of names to strings (``driver_opts:``, ``labels:``); numbers and booleans as text."""
    if value is None:
        return ()
    if not isinstance(value, dict):
        issues.add(
            path, f"must be a mapping of names to strings, e.g. type: nfs, not {describe_value(value)}"
        )
        return ()
    pairs: list[tuple[str, str]] = []
    for key, item in string_keyed(value, path, issues).items():
        key_at = key_path(path, key)
        if isinstance(item, bool):
            pairs.append((key, "true" if item else "false"))
        elif isinstance(item, str | int | float):
            pairs.append((key, str(item)))
        elif item is None:
            issues.add(key_at, f'has no value; write {key}: "" for an empty value')
        else:
            issues.add(key_at, f"must be a string, number or boolean, not {describe_value(item)}")
    return tuple(pairs)

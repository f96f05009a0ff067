"""Step 4, normalize: a validated ``StackDoc`` -> the frozen model types of ``moorage.model.stack``.

Here the text formats are parsed (names, mount specs, ports, affinity rules, memory sizes,
strategies). The result is a ``StackDraft``: the ``StackSpec`` plus, for each service, where its
mounts, ports and dependencies came from, so that ``crosscheck`` can name paths. Items that fail
to parse are reported and left out; the draft is only returned to callers when nothing failed.

Names, pinned (the rule is ``moorage.model.names``): a stack or service name is 1 to 63 lowercase
letters, digits and ``-``, starting and ending with a letter or digit (so ``<stack>.<service>-<n>``
is a valid Docker name and a DNS label). Images and environment entries hold no NUL or other
control character. ``stack:`` may carry an owner, ``owner/name``: only the part after ``/`` is the name.
``null`` cannot name a stack file's stack: it holds the services created outside any stack file
(stored documents of those services use it, hence ``null_stack``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from moorage.model import names
from moorage.model.backup import RetentionPolicy, schedule_error
from moorage.model.mount import MountSpecError, parse_mount
from moorage.model.names import command_error, control_character_error, service_name_error, stack_name_error
from moorage.model.node_loss import on_node_lost_error
from moorage.model.quoting import shown
from moorage.model.stack import (
    DeployStrategy,
    Mount,
    PortMapping,
    ServiceSpec,
    StackSpec,
    StackVolume,
    VolumeDecl,
)
from moorage.model.volume import (
    VOLUME_NAME_RE,
    VolumeScope,
    VolumeTopology,
    driver_error,
    volume_definition_errors,
)
from moorage.stackfile.document import At, ExternalDoc, OwnedDoc, ServiceDoc, StackDoc, VolumeDoc
from moorage.stackfile.formats import FormatError, parse_affinity, parse_memory, parse_port, parse_strategy
from moorage.stackfile.issues import Issues
from moorage.stackfile.paths import key_path

__all__ = [
    "STACK_VOLUME_DRIVER",
    "STACK_VOLUME_SCOPE",
    "ServiceDraft",
    "StackDraft",
    "declared_stack_name",
    "name_problem",
    "normalize",
]

_OWNER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_IMAGE_RE = re.compile(r"\S+")

T = TypeVar("T")
V = TypeVar("V")

STACK_VOLUME_SCOPE = VolumeScope.INSTANCE
"""The scope of a stack's own volume that names none: one Docker volume per instance."""
STACK_VOLUME_DRIVER = "local"
"""The driver of a stack's own volume that names none: Docker's (and Compose's) default."""


@dataclass(frozen=True, slots=True)
class ServiceDraft:
    spec: ServiceSpec
    path: str
    mounts: tuple[At[Mount], ...]  # the same mounts as spec.mounts, with their paths
    ports: tuple[At[PortMapping], ...]
    depends_on: tuple[At[str], ...]  # as written, duplicates and unknown names included


@dataclass(frozen=True, slots=True)
class StackDraft:
    spec: StackSpec
    services: tuple[ServiceDraft, ...]
    volume_aliases: frozenset[str]  # every alias under volumes:, valid or not


def normalize(doc: StackDoc, issues: Issues, *, name: str | None, null_stack: bool = False) -> StackDraft:
    """The model built from ``doc``; ``name``, when given, replaces the name in ``stack:``.

    ``null_stack`` allows the name ``null``: stored documents of stand-alone services use it,
    stack files may not.
    """
    stack_name = _stack_name(doc, name, issues, null_stack=null_stack)
    services = tuple(_service(service, issues) for service in doc.services)
    volumes = tuple(
        decl for decl in (_volume(volume, stack_name, issues) for volume in doc.volumes) if decl is not None
    )
    spec = StackSpec(
        name=stack_name,
        services=tuple(draft.spec for draft in services),
        version=doc.version,
        description=doc.description,
        volumes=volumes,
    )
    aliases = frozenset(volume.alias.value for volume in doc.volumes)
    return StackDraft(spec=spec, services=services, volume_aliases=aliases)


def declared_stack_name(stack: str) -> str:
    """The stack name in a ``stack:`` value: ``jussi/redis`` -> ``redis``."""
    return stack.rpartition("/")[2]


def name_problem(kind: str, name: str, *, null_stack: bool = False) -> str | None:
    """None when ``name`` may name a stack or service (``kind``), else what is wrong with it."""
    if kind == "stack":
        return stack_name_error(name, null_stack=null_stack)
    return service_name_error(name)


def _stack_name(doc: StackDoc, override: str | None, issues: Issues, *, null_stack: bool) -> str:
    if doc.stack is not None:
        owner, slash, declared = doc.stack.value.rpartition("/")
        problem = name_problem("stack", declared, null_stack=null_stack)
        if slash and _OWNER_RE.fullmatch(owner) is None:
            problem = f"'{shown(doc.stack.value)}' is not a valid stack: write NAME or OWNER/NAME"
        if problem is not None:
            issues.add(doc.stack.path, problem)
    if override is not None:
        problem = name_problem("stack", override, null_stack=null_stack)
        if problem is not None:
            issues.add("name", problem)
        return override
    return "" if doc.stack is None else declared_stack_name(doc.stack.value)


def _service(doc: ServiceDoc, issues: Issues) -> ServiceDraft:
    problem = name_problem("service", doc.name.value)
    if problem is not None:
        issues.add(doc.name.path, problem)
    if doc.image and (bad := control_character_error(doc.image)) is not None:
        issues.add(key_path(doc.name.path, "image"), f"image {bad}")
    elif doc.image and _IMAGE_RE.fullmatch(doc.image) is None:
        issues.add(
            key_path(doc.name.path, "image"),
            f"'{shown(doc.image)}' is not an image reference; write NAME[:TAG], e.g. redis:7-alpine",
        )
    if doc.command is not None and (bad := command_error(doc.command)) is not None:
        issues.add(key_path(doc.name.path, "command"), f"command {bad}")
    mounts = _parsed(doc.volumes, _mount, issues)
    ports = _parsed(doc.ports, parse_port, issues)
    affinity = _parsed(doc.affinity, parse_affinity, issues)
    strategy = _parsed((doc.strategy,) if doc.strategy else (), parse_strategy, issues)
    memory = _parsed((doc.mem_limit,) if doc.mem_limit else (), parse_memory, issues)
    spec = ServiceSpec(
        name=doc.name.value,
        image=doc.image,
        command=doc.command,
        environment=doc.environment,
        instances=doc.instances,
        mounts=tuple(m.value for m in mounts),
        ports=tuple(p.value for p in ports),
        affinity=tuple(a.value for a in affinity),
        strategy=strategy[0].value if strategy else DeployStrategy.HA,
        depends_on=tuple(dict.fromkeys(d.value for d in doc.depends_on)),
        memory=memory[0].value if memory else None,
        cpus=doc.cpus,
    )
    return ServiceDraft(spec=spec, path=doc.name.path, mounts=mounts, ports=ports, depends_on=doc.depends_on)


def _volume(doc: VolumeDoc, stack: str, issues: Issues) -> VolumeDecl | None:
    if VOLUME_NAME_RE.fullmatch(doc.alias.value) is None:
        issues.add(
            doc.alias.path,
            f"'{shown(doc.alias.value)}' cannot name a volume in mounts: use at least two characters, "
            "letters, digits, '_' or '-', starting with a letter or digit",
        )
    if doc.external is not None:
        return _external(doc.alias.value, doc.external, issues)
    if doc.owned is not None:
        return _owned(doc.alias.value, doc.owned, stack, issues)
    return None


def _external(alias: str, doc: ExternalDoc, issues: Issues) -> VolumeDecl:
    name = doc.name
    if name.value != alias and VOLUME_NAME_RE.fullmatch(name.value) is None:
        issues.add(
            name.path,
            f"'{shown(name.value)}' is not a valid volume name: use at least two characters, "
            "letters, digits, '_' or '-', starting with a letter or digit",
        )
    if doc.scope is not None and doc.scope.value not in {s.value for s in VolumeScope}:
        issues.add(
            doc.scope.path, f"Unknown scope '{shown(doc.scope.value)}', must be one of grid, stack, instance"
        )
    if doc.driver is not None and (problem := driver_error(doc.driver.value)) is not None:
        issues.add(doc.driver.path, problem)
    return VolumeDecl(
        alias=alias,
        external_name=name.value,
        expected_scope=doc.scope.value if doc.scope is not None else None,
        expected_driver=doc.driver.value if doc.driver is not None else None,
    )


def _owned(alias: str, doc: OwnedDoc, stack: str, issues: Issues) -> VolumeDecl:
    """A volume of the stack: checked as ``moorage volume create`` checks one, under the name it
    gets in the grid (``<stack>_<alias>``)."""
    volume = StackVolume(
        scope=doc.scope.value if doc.scope is not None else STACK_VOLUME_SCOPE.value,
        driver=doc.driver.value if doc.driver is not None else STACK_VOLUME_DRIVER,
        driver_opts=doc.driver_opts,
        labels=doc.labels,
        topology=doc.topology.value if doc.topology is not None else None,
        on_node_lost=doc.on_node_lost.value if doc.on_node_lost is not None else None,
        **_backup(doc, issues),
    )
    decl = VolumeDecl(alias=alias, owned=volume)
    grid_name = decl.grid_volume(stack)
    errors = volume_definition_errors(
        grid_name,
        volume.scope,
        volume.driver,
        dict(volume.driver_opts),
        dict(volume.labels),
        volume.topology or VolumeTopology.NODE,
    )
    errors.pop("name", None)  # the alias's own rule is reported above; the length below
    if stack and VOLUME_NAME_RE.fullmatch(alias) and (problem := names.VOLUME.error(grid_name)):
        issues.add(doc.path, f"{problem}: the stack's volume is named <stack>_<alias>; use a shorter alias")
    if doc.on_node_lost is not None and (problem := on_node_lost_error(doc.on_node_lost.value, volume.scope)):
        issues.add(doc.on_node_lost.path, problem)
    errors |= names.label_map_errors(dict(volume.driver_opts), "driver_opts")
    errors |= names.label_map_errors(dict(volume.labels), "labels")
    at = {"scope": doc.scope, "driver": doc.driver, "topology": doc.topology}
    for field_name, message in errors.items():
        top, _, _ = field_name.partition(".")
        found = at.get(top)
        issues.add(found.path if found is not None else f"{doc.path}.{field_name}", message)
    return decl


def _backup(doc: OwnedDoc, issues: Issues) -> dict[str, str | None]:
    """The backup schedule and retention of a stack's volume, checked as ``volume create`` checks
    ``--backup-schedule`` and ``--backup-keep``; the retention in its one text form."""
    schedule, keep = doc.backup_schedule, doc.backup_keep
    if schedule is not None and (problem := schedule_error(schedule.value)) is not None:
        issues.add(schedule.path, problem)
    if keep is None:
        return {"backup_schedule": schedule.value if schedule is not None else None}
    if schedule is None:
        issues.add(keep.path, "is applied after scheduled backups: give backup: {schedule: CRON} too")
    try:
        text = RetentionPolicy.parse(keep.value).text()
    except ValueError as err:
        issues.add(keep.path, str(err))
        text = None
    return {"backup_schedule": schedule.value if schedule is not None else None, "backup_keep": text}


def _mount(spec: str) -> Mount:
    try:
        return parse_mount(spec)
    except MountSpecError as error:
        raise FormatError(error.message) from None


def _parsed(items: tuple[At[T], ...], parse: Callable[[T], V], issues: Issues) -> tuple[At[V], ...]:
    """Each item parsed, keeping its path; an item that fails is reported and left out."""
    parsed = []
    for item in items:
        try:
            parsed.append(At(item.path, parse(item.value)))
        except FormatError as error:
            issues.add(item.path, str(error))
    return tuple(parsed)

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

from moorage.model.mount import MountSpecError, parse_mount
from moorage.model.names import control_character_error, service_name_error, stack_name_error
from moorage.model.stack import (
    DeployStrategy,
    Mount,
    PortMapping,
    ServiceSpec,
    StackSpec,
    VolumeDecl,
)
from moorage.model.volume import VOLUME_NAME_RE
from moorage.stackfile.document import At, ServiceDoc, StackDoc, VolumeDoc
from moorage.stackfile.formats import FormatError, parse_affinity, parse_memory, parse_port, parse_strategy
from moorage.stackfile.issues import Issues
from moorage.stackfile.paths import key_path

__all__ = [
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
    volumes = tuple(decl for decl in (_volume(volume, issues) for volume in doc.volumes) if decl is not None)
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
            problem = f"'{doc.stack.value}' is not a valid stack: write NAME or OWNER/NAME"
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
            f"'{doc.image}' is not an image reference; write NAME[:TAG], e.g. redis:7-alpine",
        )
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


def _volume(doc: VolumeDoc, issues: Issues) -> VolumeDecl | None:
    if VOLUME_NAME_RE.fullmatch(doc.alias.value) is None:
        issues.add(
            doc.alias.path,
            f"'{doc.alias.value}' cannot name a volume in mounts: use at least two characters, "
            "letters, digits, '_' or '-', starting with a letter or digit",
        )
    external = doc.external_name
    if external is None:
        return None
    if external.value != doc.alias.value and VOLUME_NAME_RE.fullmatch(external.value) is None:
        issues.add(
            external.path,
            f"'{external.value}' is not a valid volume name: use at least two characters, "
            "letters, digits, '_' or '-', starting with a letter or digit",
        )
    return VolumeDecl(alias=doc.alias.value, external_name=external.value)


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

"""Wire schemas of the REST API (separate from tables and from the domain model).

Every name that enters through the API, in a body or in the URL path, is one of the types below
(``GridName``, ``StackName``, ... and the ``...Path`` parameters), each checked by its rule in
``moorage.model.names`` before the route runs: a request that breaks one is a 422 that stores
nothing. Free text the master hands on to agents and engines (images, env entries, commands,
driver names and options, labels) is ``Text``: no NUL or other control character.

The OpenAPI document states these rules too (``pattern``, ``minLength``, ``maxLength``, ...):
``Documented`` puts the rule's own JSON Schema words into the document and checks nothing; the
check stays the rule's, in ``moorage.model.names``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from moorage.model import names
from moorage.model.grid import Grid
from moorage.model.names import NameRule
from moorage.model.node import Node
from moorage.model.node_loss import OnNodeLost
from moorage.model.volume import DRIVER_MAX, DRIVER_RE, VolumeScope, VolumeTopology, volume_drift
from moorage.store.services import ServiceView
from moorage.store.volumes import VolumeView

__all__ = [
    "DeploymentOut",
    "DeploymentPath",
    "DeploymentStarted",
    "Documented",
    "DriverOut",
    "GridCreate",
    "GridList",
    "GridName",
    "GridOut",
    "GridPath",
    "InstanceOut",
    "LabelKeyQuery",
    "LabelsIn",
    "MasterList",
    "MasterOut",
    "MoveCreate",
    "MoveList",
    "MoveOut",
    "MovePlanOut",
    "MoveStarted",
    "NodeList",
    "NodeOut",
    "NodePath",
    "PrunedOut",
    "PurgeOut",
    "PurgeRequest",
    "RestoredOut",
    "RetiredOut",
    "ScaleIn",
    "ServiceCreate",
    "ServiceList",
    "ServiceName",
    "ServiceOut",
    "ServicePath",
    "ServiceRef",
    "StackIn",
    "StackList",
    "StackName",
    "StackOut",
    "StackPath",
    "StackUpgradeIn",
    "StaleOut",
    "Text",
    "TokenOut",
    "VolumeCreate",
    "VolumeInstanceOut",
    "VolumeList",
    "VolumeName",
    "VolumeOut",
    "VolumePath",
    "VolumePruneIn",
    "VolumePruneOut",
    "VolumeShown",
    "VolumeUpdate",
    "grid_out",
    "node_out",
    "service_out",
    "volume_out",
]


@dataclass(frozen=True, slots=True)
class Documented:
    """Schema only: JSON Schema keywords stating a rule that a validator next to it checks."""

    keywords: tuple[tuple[str, Any], ...]

    @classmethod
    def of(cls, **keywords: Any) -> Documented:
        return cls(tuple(keywords.items()))

    @classmethod
    def name(cls, rule: NameRule) -> Documented:
        return cls.of(pattern=rule.pattern, minLength=rule.min_length, maxLength=rule.max_length)

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema.update(self.keywords)
        return schema


_TEXT = Documented.of(pattern=names.TEXT_PATTERN)


def _checked(problem: Callable[[str], str | None]) -> AfterValidator:
    def check(value: str) -> str:
        if (message := problem(value)) is not None:
            raise ValueError(message)
        return value

    return AfterValidator(check)


def _rule(rule: NameRule) -> AfterValidator:
    return _checked(rule.error)


def _label_map(labels: dict[str, str]) -> dict[str, str]:
    if errors := names.label_map_errors(labels):
        raise ValueError("; ".join(errors.values()))
    return labels


GridName = Annotated[
    str,
    _rule(names.GRID),
    Documented.name(names.GRID),
    Field(description="1 to 63 lowercase letters, digits and '-'"),
]
StackName = Annotated[
    str,
    _rule(names.STACK),
    Documented.name(names.STACK),
    Field(description="1 to 63 lowercase letters, digits and '-'"),
]
ServiceName = Annotated[
    str,
    _rule(names.SERVICE),
    Documented.name(names.SERVICE),
    Field(description="1 to 63 lowercase letters, digits and '-'"),
]
VolumeName = Annotated[
    str,
    _rule(names.VOLUME),
    Documented.name(names.VOLUME),
    Field(description="2 to 64 letters, digits, '_' and '-'"),
]
Text = Annotated[str, _checked(names.control_character_error), _TEXT]
"""Free text passed on to agents and engines: no NUL or other control character."""
Command = Annotated[str, _checked(names.command_error), Documented.of(pattern=names.COMMAND_PATTERN)]
"""A service's command: text that may also hold tabs and line breaks."""
StackSource = Annotated[
    str,
    _checked(names.file_text_error),
    Documented.of(pattern=names.FILE_TEXT_PATTERN),
    Field(description="The stack file as written, kept with the revision"),
]
NodeLabel = Annotated[
    str,
    _checked(names.node_label_error),
    Documented.of(pattern=names.NODE_LABEL_PATTERN),
    Field(description="key=value, e.g. zone=a"),
]
_TEXT_OF = {"type": "string", "pattern": names.TEXT_PATTERN}
LabelMap = Annotated[
    dict[str, str],
    AfterValidator(_label_map),
    Documented.of(
        maxProperties=names.MAX_LABELS,
        propertyNames={**_TEXT_OF, "minLength": 1, "maxLength": names.LABEL_KEY_MAX},
        additionalProperties={**_TEXT_OF, "maxLength": names.LABEL_VALUE_MAX},
    ),
]
"""A volume's labels or driver options: at most 64, each key (not empty: ``model.volume``) and
value within the label limits."""

# Path parameters: the same rules, for names in the URL (``null`` is a stack there: the
# stand-alone services' one).
GridPath = Annotated[str, _rule(names.GRID), Documented.name(names.GRID), Path(description="Grid name")]
StackPath = Annotated[
    str,
    _rule(names.STACK_REF),
    Documented.name(names.STACK_REF),
    Path(description="Stack name ('null': stand-alone)"),
]
ServicePath = Annotated[
    str, _rule(names.SERVICE), Documented.name(names.SERVICE), Path(description="Service name")
]
VolumePath = Annotated[
    str, _rule(names.VOLUME), Documented.name(names.VOLUME), Path(description="Volume name")
]
NodePath = Annotated[str, _rule(names.NODE), Documented.name(names.NODE), Path(description="Node name")]
DeploymentPath = Annotated[
    str, _checked(names.control_character_error), _TEXT, Path(max_length=64, description="Deployment id")
]
LabelKeyQuery = Annotated[
    list[
        Annotated[
            str,
            _checked(names.label_size_error),
            Documented.of(pattern=names.TEXT_PATTERN, maxLength=names.LABEL_KEY_MAX),
        ]
    ],
    Query(description="Label keys to remove", max_length=names.MAX_LABELS),
]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GridCreate(_In):
    name: GridName = Field(description="Grid name: lowercase letters, digits and '-'")


class GridOut(BaseModel):
    id: str
    name: str
    node_count: int
    created_at: datetime
    backup_repo: str | None = Field(default=None, description="Where the grid's backups go (restic URL)")


class GridList(BaseModel):
    grids: list[GridOut]


class TokenOut(BaseModel):
    token: str


class DriverOut(BaseModel):
    name: str
    version: str | None
    scope: str | None


class NodeOut(BaseModel):
    id: str
    name: str
    grid: str
    status: str
    status_since: datetime
    last_seen_at: datetime
    zone: str | None
    labels: list[str]
    engine_version: str | None
    cpus: int
    memory: int
    drivers: list[DriverOut]
    created_at: datetime | None
    master: str | None = Field(
        default=None, description="The master its agent is connected to (several masters); none while offline"
    )
    drained: bool = Field(description="Drained: takes no instance until undrained")
    lost_at: datetime | None = Field(
        default=None,
        description="When it was declared lost (node declare-lost); null when it was not, or is back",
    )


class NodeList(BaseModel):
    nodes: list[NodeOut]


class LabelsIn(_In):
    labels: Annotated[list[NodeLabel], Documented.of(minItems=1)] = Field(
        description="Labels as key=value (at least one)", max_length=names.MAX_LABELS
    )


def grid_out(grid: Grid) -> GridOut:
    return GridOut(
        id=grid.name,
        name=grid.name,
        node_count=grid.node_count,
        created_at=grid.created_at,
        backup_repo=grid.backup_repo,
    )


def node_out(node: Node) -> NodeOut:
    return NodeOut(
        id=node.id,
        name=node.name,
        grid=node.grid,
        status=node.status.value,
        status_since=node.status_since,
        last_seen_at=node.last_seen_at,
        zone=node.zone,
        labels=[f"{k}={v}" for k, v in sorted(node.labels.items())],
        engine_version=node.info.engine_version,
        cpus=node.info.cpus,
        memory=node.info.memory,
        drivers=[DriverOut(name=d.name, version=d.version, scope=d.scope) for d in node.info.drivers],
        created_at=node.created_at,
        master=node.master,
        drained=node.drained,
        lost_at=node.lost_at,
    )


# -- volumes -----------------------------------------------------------------------------------


ON_NODE_LOST = Annotated[str, Documented.of(enum=tuple(p.value for p in OnNodeLost))]


class VolumeCreate(_In):
    # the scope, the driver and the topology are checked by model.volume.volume_definition_errors
    name: VolumeName
    scope: Annotated[str, Documented.of(enum=[scope.value for scope in VolumeScope])]
    driver: Annotated[Text, Documented.of(pattern=DRIVER_RE.pattern, maxLength=DRIVER_MAX)]
    driver_opts: LabelMap = Field(default_factory=dict)
    labels: LabelMap = Field(default_factory=dict)
    topology: Annotated[str, Documented.of(enum=tuple(t.value for t in VolumeTopology))] | None = Field(
        default=None,
        description=(
            "Where the data can be used from: node, zone, region or grid. Default: grid when a node "
            "of the grid has the driver with capability scope global, node otherwise"
        ),
    )
    on_node_lost: ON_NODE_LOST | None = Field(
        default=None,
        description=(
            "What its data does once its node is declared lost (moorage node declare-lost): wait "
            "(the default), restore (from the latest backup, on another node), recreate (empty, on "
            "another node); restore and recreate for instance-scope volumes only"
        ),
    )


class VolumeUpdate(_In):
    on_node_lost: ON_NODE_LOST = Field(
        description="wait, restore or recreate (see VolumeCreate); the only field that changes"
    )


class VolumeInstanceOut(BaseModel):
    name: str
    node: str
    zone: str | None
    region: str | None
    state: str
    error: str | None
    unused_since: datetime | None = Field(
        default=None, description="With state unused: since when no instance would use it"
    )
    drift: dict[str, dict[str, Any]] | None = Field(
        default=None,
        description=(
            "How the Docker volume on its node differs from the definition: {driver|driver_opts: "
            "{definition, engine}}; {} when it does not, null until its agent reported it"
        ),
    )


class ServiceRef(BaseModel):
    id: str


class VolumeOut(BaseModel):
    id: str
    name: str
    scope: str
    driver: str
    topology: str
    driver_opts: dict[str, str]
    labels: dict[str, str]
    created_at: datetime
    updated_at: datetime
    stack: str | None = Field(
        description="The stack that declared and owns it (grid/stack); null: volume create"
    )
    on_node_lost: str = Field(
        description="wait, restore or recreate: what its data does on a node declared lost"
    )
    instances: list[VolumeInstanceOut]
    services: list[ServiceRef]


class VolumeList(BaseModel):
    volumes: list[VolumeOut]


PRUNE_OLDER_THAN_MAX = 100 * 365 * 86400
"""The longest ``older_than`` (seconds) a prune takes: a hundred years."""


class VolumePruneIn(_In):
    volume: VolumeName | None = Field(default=None, description="Only this volume's unused instances")
    older_than: float | None = Field(
        default=None,
        ge=0,
        le=PRUNE_OLDER_THAN_MAX,
        strict=True,
        description="Only those unused for longer than this many seconds",
    )
    dry_run: bool = Field(default=False, strict=True, description="Say what would be removed; remove nothing")


class PrunedOut(BaseModel):
    volume: str
    name: str = Field(description="The Docker volume")
    node: str
    unused_since: datetime


class VolumePruneOut(BaseModel):
    dry_run: bool
    pruned: list[PrunedOut]


# -- volume moves ------------------------------------------------------------------------------

DockerVolumeName = Annotated[
    str,
    Field(
        min_length=2,
        max_length=255,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]+$",
        description="A Docker volume name, as 'moorage volume show' lists a volume's instances",
    ),
]
NodeName = Annotated[str, _rule(names.NODE), Documented.name(names.NODE), Field(description="Node name")]


class MoveCreate(_In):
    docker_volume: DockerVolumeName
    to: NodeName
    dry_run: bool = Field(default=False, description="Only plan: say what the move would do")


class MovePlanOut(BaseModel):
    volume: str
    docker_volume: str
    source: str
    source_zone: str | None
    target: str
    target_zone: str | None
    method: str = Field(description="copy (data through the master) or reattach (same storage, no copy)")
    bytes: int
    files: int
    instances: list[str] = Field(description="The instances that stop while it moves")


class MoveOut(BaseModel):
    id: str
    volume: str
    docker_volume: str
    source: str
    target: str
    method: str
    state: str = Field(description="running, succeeded or failed")
    phase: str = Field(
        description="queued (a drain's, waiting for its turn), plan, copy, check, stop, sync, verify, switch or done"
    )
    bytes_total: int
    bytes_done: int
    files: int
    instances: list[str]
    message: str | None = Field(description="What failed")
    cleanup: str = Field(description="none, pending (the partial copy goes once its node is back) or done")
    created_at: datetime
    updated_at: datetime
    stopped_at: datetime | None
    switched_at: datetime | None
    finished_at: datetime | None


class MoveStarted(BaseModel):
    plan: MovePlanOut
    move: MoveOut | None = Field(description="The job; null for a dry run")


class MoveList(BaseModel):
    moves: list[MoveOut]


class RetiredOut(BaseModel):
    name: str
    node: str
    since: datetime
    state: str = Field(description="kept, or purging (its node deletes it)")


class StaleOut(BaseModel):
    name: str
    node: str
    since: datetime = Field(description="When its node was declared lost and its instance went elsewhere")
    state: str = Field(description="kept, or purging (its node deletes it)")


class RestoredOut(BaseModel):
    name: str = Field(description="The Docker volume restored")
    node: str = Field(description="The node it was restored onto")
    backup: str
    backup_time: datetime | None = Field(description="When the backup was taken: the age of the data")
    restored_at: datetime
    lost_node: str = Field(description="The node declared lost that held it")


class VolumeShown(VolumeOut):
    retired: list[RetiredOut] = Field(
        default_factory=list, description="Source copies moves left, kept until purged"
    )
    stale: list[StaleOut] = Field(
        default_factory=list,
        description=(
            "Copies superseded on a node declared lost (their instance runs elsewhere now): kept "
            "with their data, removed only by volume purge"
        ),
    )
    restored: list[RestoredOut] = Field(
        default_factory=list,
        description="Volume instances restored from backup after their node was declared lost (the latest each)",
    )


class PurgeRequest(_In):
    docker_volumes: list[DockerVolumeName] = Field(
        default_factory=list,
        max_length=1000,
        description="The retired and stale copies to remove; none: all",
    )


class PurgeOut(BaseModel):
    purging: list[str]


def volume_out(view: VolumeView) -> VolumeOut:
    return VolumeOut(
        id=f"{view.grid}/{view.name}",
        name=view.name,
        scope=view.scope,
        driver=view.driver,
        topology=view.topology,
        driver_opts=view.driver_opts,
        labels=view.labels,
        created_at=view.created_at,
        updated_at=view.updated_at,
        stack=f"{view.grid}/{view.stack}" if view.stack is not None else None,
        on_node_lost=view.on_node_lost,
        instances=[
            VolumeInstanceOut(
                name=i.name,
                node=i.node,
                zone=i.zone,
                region=i.region,
                state=i.state,
                error=i.error,
                unused_since=i.unused_since,
                drift=volume_drift(view.driver, view.driver_opts, i.reported_driver, i.reported_driver_opts),
            )
            for i in view.instances
        ],
        services=[ServiceRef(id=s) for s in view.services],
    )


# -- stacks, services, deployments ---------------------------------------------------------------


class StackIn(_In):
    stack: dict[str, Any] = Field(description="The normalized stack (what 'moorage stack validate' prints)")
    source: StackSource = ""
    name: StackName | None = Field(
        default=None, description="Install under this name instead of the one in the file"
    )
    deploy: bool = True


class StackUpgradeIn(_In):
    stack: dict[str, Any]
    source: StackSource = ""
    deploy: bool = True


class ServiceCreate(_In):
    name: ServiceName
    image: Text
    instances: int = Field(default=1, ge=0, strict=True)  # a JSON boolean is no count
    cmd: Command | None = None
    env: list[Text] = Field(default_factory=list)
    volumes: list[Text] = Field(default_factory=list)
    ports: list[Text] = Field(default_factory=list)
    affinity: list[Text] = Field(default_factory=list)
    strategy: Text | None = None
    memory: Text | None = None
    cpus: float | None = None
    deploy: bool = False


class ScaleIn(_In):
    instances: int = Field(ge=0, strict=True)  # a JSON boolean is no count


class InstanceOut(BaseModel):
    instance: int
    node: str | None
    state: str
    reason: str | None
    container: str | None
    exit_code: int | None
    started_at: datetime | None
    up_to_date: bool


class ServiceOut(BaseModel):
    id: str
    grid: str
    stack: str
    name: str
    image: str
    command: str | None
    instances: int
    strategy: str
    environment: list[str]
    volumes: list[str]
    ports: list[str]
    affinity: list[str]
    depends_on: list[str]
    created_at: datetime
    updated_at: datetime
    containers: list[InstanceOut]


class ServiceList(BaseModel):
    services: list[ServiceOut]


class StackOut(BaseModel):
    id: str
    name: str
    revision: int
    version: str | None
    description: str | None
    stack: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    services: list[ServiceOut]


class StackList(BaseModel):
    stacks: list[StackOut]


class DeploymentOut(BaseModel):
    id: str
    target: str
    state: str
    message: str | None
    created_at: datetime
    finished_at: datetime | None
    services: list[ServiceOut]
    superseded_by: str | None = None  # a newer deployment took over its services while it ran


class DeploymentStarted(BaseModel):
    deployment: str | None


def service_out(view: ServiceView) -> ServiceOut:
    spec = view.stored.spec
    return ServiceOut(
        id=view.id,
        grid=view.grid,
        stack=view.stack,
        name=spec.name,
        image=spec.image,
        command=spec.command,
        instances=spec.instances,
        strategy=spec.strategy.value,
        environment=[f"{k}={v}" for k, v in spec.environment],
        volumes=[m.spec() for m in spec.mounts],
        ports=[p.spec() for p in spec.ports],
        affinity=[a.spec() for a in spec.affinity],
        depends_on=list(spec.depends_on),
        created_at=view.created_at,
        updated_at=view.updated_at,
        containers=[
            InstanceOut(
                instance=i.number,
                node=i.node,
                state=i.state,
                reason=i.reason,
                container=i.container,
                exit_code=i.exit_code,
                started_at=i.started_at,
                up_to_date=i.up_to_date,
            )
            for i in view.instances
        ],
    )


class MasterOut(BaseModel):
    id: str
    name: str
    url: str
    version: str
    started_at: datetime
    seen_at: datetime
    leader: bool = Field(description="Whether this master does the once-only work (rollouts)")
    this: bool = Field(description="Whether this master answered the request")
    nodes: int = Field(description="Agents connected to this master")


class MasterList(BaseModel):
    this: str
    leader: str | None = Field(description="The id of the master that leads; none while one takes over")
    masters: list[MasterOut]

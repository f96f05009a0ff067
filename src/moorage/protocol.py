"""Messages between agents and the master over the agent WebSocket (``/v1/agent``).

Agent → master: ``hello`` (first), ``info`` (when anything changed), ``heartbeat``,
``status`` (what the engine has for the desired containers and volumes, after each convergence).
Master → agent: ``welcome`` (after hello), ``error`` (then the master closes), ``desired`` (the
whole desired state of the node: containers and volumes; sent on connect and whenever it changes).

Who may say hello: the handshake carries ``Authorization: Bearer`` with either the grid's join
token (admits a node id the master does not know yet) or the node's own credential (the node it
names and no other). ``welcome`` carries a new credential the first time a node is admitted (and
once for a node that joined before credentials existed); the agent keeps it in its data dir.
Every frame is JSON text of at most ``MAX_MESSAGE_BYTES``; anything else closes the connection
with a reason.

The agent is level-triggered: it converges its engine to the last ``desired`` it received, on a
timer as well as when a new one arrives, so a missed message only delays convergence.

Every message is one JSON object with a ``type``. Both sides validate with these models.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from moorage.model.names import NODE
from moorage.model.node import node_id_error

__all__ = [
    "AGENT_PATH",
    "MAX_MESSAGE_BYTES",
    "AgentMessage",
    "ContainerSpec",
    "Desired",
    "DriverWire",
    "ErrorMsg",
    "Heartbeat",
    "Hello",
    "InfoMsg",
    "InstanceStatus",
    "MasterMessage",
    "MountWire",
    "NodeInfoWire",
    "PortWire",
    "StatusMsg",
    "VolumeSpec",
    "VolumeStatus",
    "Welcome",
    "agent_message",
    "master_message",
    "validation_problem",
]

AGENT_PATH = "/v1/agent"
MAX_MESSAGE_BYTES = 2**24  # one frame, either way: a whole node's desired state fits many times over


class _Msg(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class DriverWire(_Msg):
    name: str
    version: str | None = None
    scope: Literal["local", "global"] | None = None


class NodeInfoWire(_Msg):
    engine_version: str | None = None
    cpus: int = 0
    memory: int = 0
    drivers: list[DriverWire] = Field(default_factory=list)


class PortWire(_Msg):
    host: int
    container: int
    protocol: str = "tcp"


class MountWire(_Msg):
    kind: Literal["volume", "bind", "anonymous"]
    target: str
    source: str | None = None  # Docker volume name or host path
    read_only: bool = False


class ContainerSpec(_Msg):
    """One container the node should run. ``labels`` carry grid, stack, service, instance and hash."""

    name: str
    service_id: str  # grid/stack/service
    instance: int
    image: str
    command: list[str] | None = None
    env: list[str] = Field(default_factory=list)
    ports: list[PortWire] = Field(default_factory=list)
    mounts: list[MountWire] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    memory: int | None = None
    cpus: float | None = None
    config_hash: str


class VolumeSpec(_Msg):
    """A Docker volume the node should have before containers that mount it are created."""

    name: str  # the Docker volume name
    volume_instance_id: str
    driver: str
    driver_opts: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    create: bool = True  # False: only check it is there (a volume deleted by hand waits for a deploy)


class InstanceStatus(_Msg):
    service_id: str
    instance: int
    state: Literal["created", "running", "restarting", "exited", "error", "missing"]
    config_hash: str | None = None
    exit_code: int | None = None
    error: str | None = None
    started_at: str | None = None


class VolumeStatus(_Msg):
    volume_instance_id: str
    name: str
    state: Literal["present", "missing", "removed", "error"]
    error: str | None = None


class Hello(_Msg):
    type: Literal["hello"] = "hello"
    node_id: str  # the rules: model/node.py and model/names.py, applied below
    name: str
    labels: list[str] = Field(default_factory=list)
    info: NodeInfoWire
    agent_version: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if (problem := NODE.error(name)) is not None:
            raise ValueError(f"{problem}; start the agent with --name NAME")
        return name

    @field_validator("node_id")
    @classmethod
    def _node_id(cls, node_id: str) -> str:
        if (problem := node_id_error(node_id)) is not None:
            raise ValueError(problem)
        return node_id


class InfoMsg(_Msg):
    type: Literal["info"] = "info"
    info: NodeInfoWire


class StatusMsg(_Msg):
    type: Literal["status"] = "status"
    instances: list[InstanceStatus] = Field(default_factory=list)
    volumes: list[VolumeStatus] = Field(default_factory=list)
    # the ``seq`` of the desired state this report answers (converged after it arrived); an
    # agent sends one report after each desired state, changed or not. None: counts as the latest
    desired_seq: int | None = None


class Heartbeat(_Msg):
    type: Literal["heartbeat"] = "heartbeat"


class Welcome(_Msg):
    type: Literal["welcome"] = "welcome"
    node_id: str
    name: str
    grid: str
    heartbeat_interval: float
    credential: str | None = None  # this node's own secret, sent once: keep it, present it next time


class Desired(_Msg):
    type: Literal["desired"] = "desired"
    seq: int | None = None  # numbers the pushes to a node; its next report names the one it answers
    containers: list[ContainerSpec] = Field(default_factory=list)
    volumes: list[VolumeSpec] = Field(default_factory=list)
    remove_volumes: list[VolumeSpec] = Field(default_factory=list)  # delete these (only if labelled ours)


class ErrorMsg(_Msg):
    type: Literal["error"] = "error"
    message: str


AnyAgentMessage = Hello | InfoMsg | Heartbeat | StatusMsg
AnyMasterMessage = Welcome | ErrorMsg | Desired
AgentMessage = Annotated[AnyAgentMessage, Field(discriminator="type")]
MasterMessage = Annotated[AnyMasterMessage, Field(discriminator="type")]

_agent_adapter: TypeAdapter[AnyAgentMessage] = TypeAdapter(AgentMessage)
_master_adapter: TypeAdapter[AnyMasterMessage] = TypeAdapter(MasterMessage)


def agent_message(raw: str | bytes) -> AnyAgentMessage:
    """Parse one agent → master message (raises pydantic.ValidationError)."""
    return _agent_adapter.validate_json(raw)


def validation_problem(err: ValidationError) -> str:
    """A peer's bad message in one line, without echoing what it sent (it may hold escapes)."""
    parts = []
    for item in err.errors(include_input=False, include_url=False)[:5]:
        where = ".".join(str(p) for p in item["loc"]) or "message"
        parts.append(f"{where}: {str(item['msg']).removeprefix('Value error, ')}")
    return "; ".join(parts)


def master_message(raw: str | bytes) -> AnyMasterMessage:
    """Parse one master → agent message (raises pydantic.ValidationError)."""
    return _master_adapter.validate_json(raw)

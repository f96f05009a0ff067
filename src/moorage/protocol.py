"""Messages between agents and the master over the agent WebSocket (``/v1/agent``).

Agent → master: ``hello`` (first), ``info`` (when anything changed), ``heartbeat``,
``status`` (what the engine has for the desired containers and volumes, after each convergence).
Master → agent: ``welcome`` (after hello), ``error`` (then the master closes), ``desired`` (the
whole desired state of the node: containers and volumes; sent on connect and whenever it changes).

The agent is level-triggered: it converges its engine to the last ``desired`` it received, on a
timer as well as when a new one arrives, so a missed message only delays convergence.

Every message is one JSON object with a ``type``. Both sides validate with these models.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

__all__ = [
    "AGENT_PATH",
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
]

AGENT_PATH = "/v1/agent"


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
    node_id: str = Field(min_length=8, max_length=64)
    name: str = Field(min_length=1, max_length=128)
    labels: list[str] = Field(default_factory=list)
    info: NodeInfoWire
    agent_version: str | None = None


class InfoMsg(_Msg):
    type: Literal["info"] = "info"
    info: NodeInfoWire


class StatusMsg(_Msg):
    type: Literal["status"] = "status"
    instances: list[InstanceStatus] = Field(default_factory=list)
    volumes: list[VolumeStatus] = Field(default_factory=list)


class Heartbeat(_Msg):
    type: Literal["heartbeat"] = "heartbeat"


class Welcome(_Msg):
    type: Literal["welcome"] = "welcome"
    node_id: str
    name: str
    grid: str
    heartbeat_interval: float


class Desired(_Msg):
    type: Literal["desired"] = "desired"
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


def master_message(raw: str | bytes) -> AnyMasterMessage:
    """Parse one master → agent message (raises pydantic.ValidationError)."""
    return _master_adapter.validate_json(raw)

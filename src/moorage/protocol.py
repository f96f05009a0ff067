"""Messages between agents and the master over the agent WebSocket (``/v1/agent``).

Agent → master: ``hello`` (first), ``info`` (when anything changed), ``heartbeat``.
Master → agent: ``welcome`` (after hello), ``error`` (then the master closes).

Every message is one JSON object with a ``type``. Both sides validate with these models.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

__all__ = [
    "AGENT_PATH",
    "AgentMessage",
    "DriverWire",
    "ErrorMsg",
    "Heartbeat",
    "Hello",
    "InfoMsg",
    "MasterMessage",
    "NodeInfoWire",
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


class Heartbeat(_Msg):
    type: Literal["heartbeat"] = "heartbeat"


class Welcome(_Msg):
    type: Literal["welcome"] = "welcome"
    node_id: str
    name: str
    grid: str
    heartbeat_interval: float


class ErrorMsg(_Msg):
    type: Literal["error"] = "error"
    message: str


AgentMessage = Annotated[Hello | InfoMsg | Heartbeat, Field(discriminator="type")]
MasterMessage = Annotated[Welcome | ErrorMsg, Field(discriminator="type")]

_agent_adapter: TypeAdapter[Hello | InfoMsg | Heartbeat] = TypeAdapter(AgentMessage)
_master_adapter: TypeAdapter[Welcome | ErrorMsg] = TypeAdapter(MasterMessage)


def agent_message(raw: str | bytes) -> Hello | InfoMsg | Heartbeat:
    """Parse one agent → master message (raises pydantic.ValidationError)."""
    return _agent_adapter.validate_json(raw)


def master_message(raw: str | bytes) -> Welcome | ErrorMsg:
    """Parse one master → agent message (raises pydantic.ValidationError)."""
    return _master_adapter.validate_json(raw)

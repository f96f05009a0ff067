"""What a running testbed is made of, kept in ``<dir>/state.json`` between command-line calls.

Every process is recorded with its pid and start time the moment it is started, so that
``down`` (or the next ``up``, after a crash) can stop exactly those processes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from moorage.testbed.engine import EnginePaths, EngineRecord
from moorage.testbed.errors import TestbedError
from moorage.testbed.process import ProcessRef

__all__ = [
    "BalancerRecord",
    "BedState",
    "DriverRecord",
    "MasterRecord",
    "NodeRecord",
    "load_state",
    "save_state",
    "state_file",
]

VERSION = 1


def _ref(data: Any) -> ProcessRef | None:
    return ProcessRef.from_json(data) if data else None


@dataclass(frozen=True)
class DriverRecord:
    """A volume driver plugin process serving one node's engine through a socket in its plugin folder."""

    name: str
    socket: Path
    root: Path
    scope: str  # "local", or "global" for one root shared by all nodes
    log: Path
    process: ProcessRef | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "socket": str(self.socket),
            "root": str(self.root),
            "scope": self.scope,
            "log": str(self.log),
            "process": self.process.to_json() if self.process else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DriverRecord:
        return cls(
            name=str(data["name"]),
            socket=Path(data["socket"]),
            root=Path(data["root"]),
            scope=str(data["scope"]),
            log=Path(data["log"]),
            process=_ref(data.get("process")),
        )


@dataclass(frozen=True)
class NodeRecord:
    """One node: its engine, its agent and its volume drivers, and whether it is up."""

    name: str
    index: int  # node-<index>, from 1
    root: Path
    zone: str | None = None
    running: bool = False
    engine: EngineRecord | None = None
    agent: ProcessRef | None = None
    drivers: tuple[DriverRecord, ...] = ()
    relay: ProcessRef | None = None  # the node's link to the master (see relay.py)
    relay_port: int | None = None  # where on 127.0.0.1 the agent dials the master, kept for the node's life
    cut: bool = False  # cut off from the master and its containers' network down (testbed node cut)

    @property
    def paths(self) -> EnginePaths:
        return EnginePaths(self.name, self.root)

    @property
    def agent_dir(self) -> Path:
        return self.root / "agent"

    @property
    def agent_log(self) -> Path:
        return self.root / "agent.log"

    @property
    def relay_socket(self) -> Path:
        return self.root / "relay.sock"

    @property
    def relay_log(self) -> Path:
        return self.root / "relay.log"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "index": self.index,
            "root": str(self.root),
            "zone": self.zone,
            "running": self.running,
            "docker_host": self.paths.docker_host,
            "engine": self.engine.to_json() if self.engine else None,
            "agent": self.agent.to_json() if self.agent else None,
            "drivers": [d.to_json() for d in self.drivers],
            "relay": self.relay.to_json() if self.relay else None,
            "relay_port": self.relay_port,
            "cut": self.cut,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NodeRecord:
        return cls(
            name=str(data["name"]),
            index=int(data["index"]),
            root=Path(data["root"]),
            zone=data.get("zone"),
            running=bool(data.get("running")),
            engine=EngineRecord.from_json(data["engine"]) if data.get("engine") else None,
            agent=_ref(data.get("agent")),
            drivers=tuple(DriverRecord.from_json(d) for d in data.get("drivers", [])),
            relay=_ref(data.get("relay")),
            relay_port=int(data["relay_port"]) if data.get("relay_port") else None,
            cut=bool(data.get("cut")),
        )


@dataclass(frozen=True)
class MasterRecord:
    """The master process, where it listens, and the tokens the testbed got from it."""

    url: str
    data_dir: Path
    log: Path
    process: ProcessRef | None = None
    grid: str = ""
    admin_token: str = ""
    join_token: str = ""
    heartbeat_interval: float | None = None  # the master's --heartbeat-interval, kept for restarts
    name: str | None = None  # with several masters: master-<i> (its --name)
    db_url: str | None = None  # its --db (several masters share one PostgreSQL)

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "data_dir": str(self.data_dir),
            "log": str(self.log),
            "process": self.process.to_json() if self.process else None,
            "grid": self.grid,
            "admin_token": self.admin_token,
            "join_token": self.join_token,
            "heartbeat_interval": self.heartbeat_interval,
            "name": self.name,
            "db_url": self.db_url,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MasterRecord:
        return cls(
            url=str(data["url"]),
            data_dir=Path(data["data_dir"]),
            log=Path(data["log"]),
            process=_ref(data.get("process")),
            grid=str(data.get("grid", "")),
            admin_token=str(data.get("admin_token", "")),
            join_token=str(data.get("join_token", "")),
            heartbeat_interval=float(data["heartbeat_interval"]) if data.get("heartbeat_interval") else None,
            name=data.get("name"),
            db_url=data.get("db_url"),
        )


@dataclass(frozen=True)
class BalancerRecord:
    """HAProxy in front of several masters: its generated configuration, log and process."""

    url: str
    config: Path
    log: Path
    process: ProcessRef | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "config": str(self.config),
            "log": str(self.log),
            "process": self.process.to_json() if self.process else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BalancerRecord:
        return cls(
            url=str(data["url"]),
            config=Path(data["config"]),
            log=Path(data["log"]),
            process=_ref(data.get("process")),
        )


@dataclass(frozen=True)
class BedState:
    """The whole testbed."""

    dir: Path
    nodes: tuple[NodeRecord, ...] = ()
    # the master the nodes and users talk to; with several masters: the balancer's address
    # (no process of its own), and the masters behind it in ``masters``
    master: MasterRecord | None = None
    masters: tuple[MasterRecord, ...] = ()
    balancer: BalancerRecord | None = None

    def peer(self, name: str) -> MasterRecord:
        for master in self.masters:
            if master.name == name:
                return master
        known = ", ".join(str(m.name) for m in self.masters) or "none (one master: use `master restart`)"
        raise TestbedError(f"No master {name!r} in the testbed at {self.dir}; its masters are: {known}.")

    def with_peer(self, master: MasterRecord) -> BedState:
        return replace(self, masters=tuple(master if m.name == master.name else m for m in self.masters))

    def node(self, name: str) -> NodeRecord:
        for node in self.nodes:
            if node.name == name:
                return node
        known = ", ".join(n.name for n in self.nodes) or "none"
        raise TestbedError(f"No node {name!r} in the testbed at {self.dir}; its nodes are: {known}.")

    def with_node(self, node: NodeRecord) -> BedState:
        return replace(self, nodes=tuple(node if n.name == node.name else n for n in self.nodes))

    def to_json(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "dir": str(self.dir),
            "master": self.master.to_json() if self.master else None,
            "masters": [m.to_json() for m in self.masters],
            "balancer": self.balancer.to_json() if self.balancer else None,
            "nodes": [n.to_json() for n in self.nodes],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BedState:
        return cls(
            dir=Path(data["dir"]),
            master=MasterRecord.from_json(data["master"]) if data.get("master") else None,
            masters=tuple(MasterRecord.from_json(m) for m in data.get("masters", [])),
            balancer=BalancerRecord.from_json(data["balancer"]) if data.get("balancer") else None,
            nodes=tuple(NodeRecord.from_json(n) for n in data.get("nodes", [])),
        )


def state_file(folder: Path) -> Path:
    return folder / "state.json"


def load_state(folder: Path) -> BedState | None:
    """The recorded state, or None when there is none; a damaged file is an error naming it."""
    path = state_file(folder)
    try:
        return BedState.from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise TestbedError(
            f"The testbed state file {path} is damaged ({exc}); remove it and run `down`."
        ) from exc


def save_state(state: BedState) -> None:
    """Write the state atomically (a crash leaves the old or the new file, never half of one)."""
    path = state_file(state.dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(json.dumps(state.to_json(), indent=2) + "\n")
    partial.replace(path)

"""Where the CLI finds its master, token and grid: flags, then environment, then the config file."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from moorage.errors import MoorageError

if TYPE_CHECKING:
    import httpx

    from moorage.client.api import MasterClient

__all__ = ["CliContext", "config_path", "load_config", "save_config"]


def config_path() -> Path:
    override = os.environ.get("MOORAGE_CONFIG")
    if override:
        return Path(override)
    return Path(typer.get_app_dir("moorage")) / "config.json"


def load_config() -> dict[str, str]:
    path = config_path()
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise MoorageError(
            f"Cannot read the config file {path}: {err}; fix or delete it and log in again"
        ) from err
    return {k: str(v) for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}


def save_config(**values: str | None) -> Path:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = load_config()
    data.update({k: v for k, v in values.items() if v is not None})
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(data, out, indent=2)
    return path


@dataclass
class CliContext:
    url: str | None
    token: str | None
    grid_name: str | None
    ca: Path | None = None  # the CA bundle an https:// master is checked against
    transport: httpx.BaseTransport | None = None  # tests: the master's answers without a master

    @classmethod
    def resolve(
        cls,
        url: str | None,
        token: str | None,
        grid: str | None,
        ca: Path | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> CliContext:
        config = load_config()
        ca_path = ca or os.environ.get("MOORAGE_CA") or config.get("ca")
        return cls(
            url=url or os.environ.get("MOORAGE_URL") or config.get("url"),
            token=token or os.environ.get("MOORAGE_TOKEN") or config.get("token"),
            grid_name=grid or os.environ.get("MOORAGE_GRID") or config.get("grid"),
            ca=Path(ca_path) if ca_path else None,
            transport=transport,
        )

    def client(self) -> MasterClient:
        if not self.url:
            raise MoorageError(
                "No master URL: run 'moorage login --url URL --token TOKEN', or set MOORAGE_URL"
            )
        if not self.token:
            raise MoorageError("No token: run 'moorage login --url URL --token TOKEN', or set MOORAGE_TOKEN")
        from moorage.client.api import MasterClient  # httpx: only for the commands that call the master

        return MasterClient(self.url, self.token, ca=self.ca, transport=self.transport)

    @property
    def grid(self) -> str:
        if not self.grid_name:
            raise MoorageError(
                "No grid selected: run 'moorage grid use NAME', or pass --grid / set MOORAGE_GRID"
            )
        return self.grid_name

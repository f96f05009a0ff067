"""``moorage master``: open the store, migrate, make the first admin token, serve under uvicorn."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn

from moorage.errors import InvalidInput
from moorage.master.app import create_app
from moorage.master.http_protocol import MAX_HEADER_BYTES, LimitedHttpProtocol
from moorage.master.settings import MasterSettings
from moorage.master.startup_heap import freeze_startup_heap
from moorage.store.database import Database
from moorage.store.nodes import mark_all_offline
from moorage.store.tokens import create_admin_token, has_admin_token

__all__ = ["MasterConfig", "parse_listen", "prepare", "run_master"]

log = logging.getLogger("moorage.master")


@dataclass(frozen=True, slots=True)
class MasterConfig:
    host: str
    port: int
    data_dir: Path
    db_url: str | None = None
    settings: MasterSettings = field(default_factory=MasterSettings)

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.data_dir / 'moorage.db'}"


def parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidInput.one("--listen", f"'{listen}' is not HOST:PORT, e.g. 127.0.0.1:8470")
    return host.strip("[]") or "0.0.0.0", int(port)


def prepare(config: MasterConfig) -> tuple[Database, str | None]:
    """Create the data dir, migrate the store, and make the admin token on first start.

    Returns the store and the new admin token (None if one existed already).
    """
    config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    db = Database(config.database_url)
    db.migrate()
    token: str | None = None
    with db.session() as session:
        mark_all_offline(session)
        if not has_admin_token(session):
            token = create_admin_token(session)
    if token is not None:
        token_file = config.data_dir / "admin.token"
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(token + "\n")
        os.chmod(token_file, 0o600)
    return db, token


def run_master(config: MasterConfig) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # not a line per migration at each start
    db, token = prepare(config)
    if token is not None:
        print(f"Admin token (shown once, also in {config.data_dir / 'admin.token'}, mode 0600):", flush=True)
        print(f"  {token}", flush=True)
    print(
        f"Moorage master on http://{config.host}:{config.port} (store: {db.engine.url!r}; "
        f"admin token file: {config.data_dir / 'admin.token'})",
        flush=True,
    )
    app = create_app(db, config.settings)
    freeze_startup_heap()  # what start-up built lives as long as the process: collections skip it
    uvicorn.run(
        app,
        host=config.host,
        port=config.port,
        log_level="warning",
        access_log=False,  # no log line per request (uvicorn would format and drop each one)
        ws_ping_interval=None,
        timeout_graceful_shutdown=5,
        http=LimitedHttpProtocol,  # request headers: a deadline and a size limit
        timeout_keep_alive=5,  # an idle kept-alive connection closes after 5 s
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,  # the same limit if h11 serves instead
    )
    db.dispose()

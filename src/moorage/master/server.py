"""``moorage master``: open the store, migrate, make the first admin token, serve under uvicorn."""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

import uvicorn
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from moorage.errors import Conflict, InvalidInput, MoorageError
from moorage.master.app import create_app, stop_rollouts
from moorage.master.http_protocol import MAX_HEADER_BYTES, LimitedHttpProtocol
from moorage.master.leadership import MasterIdentity
from moorage.master.settings import MasterSettings
from moorage.master.startup_heap import freeze_startup_heap
from moorage.protocol import MAX_MESSAGE_BYTES
from moorage.store.database import Database
from moorage.store.events import EVENTS_KEPT, prune_all_events
from moorage.store.nodes import mark_all_offline
from moorage.store.tokens import create_admin_token, has_admin_token

__all__ = ["MasterConfig", "MasterTls", "parse_advertise_url", "parse_listen", "prepare", "run_master"]

log = logging.getLogger("moorage.master")


@dataclass(frozen=True, slots=True)
class MasterConfig:
    host: str
    port: int
    data_dir: Path
    db_url: str | None = None
    settings: MasterSettings = field(default_factory=MasterSettings)
    tls: MasterTls | None = None
    events_kept: int = EVENTS_KEPT  # per grid (store/events.py)
    name: str | None = None  # how other masters and `moorage master status` show this one
    advertise_url: str | None = None  # where the other masters reach this one (default: ``url``)

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.data_dir / 'moorage.db'}"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"

    @property
    def identity(self) -> MasterIdentity:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return MasterIdentity(name=self.name or f"{host}:{self.port}", url=self.advertise_url or self.url)


@dataclass(frozen=True, slots=True)
class MasterTls:
    """The certificate (chain, PEM) and its private key the master serves HTTPS and WSS with."""

    cert: Path
    key: Path

    @classmethod
    def checked(cls, cert: Path | None, key: Path | None) -> MasterTls | None:
        """Both or neither; each a readable PEM file, and the pair loads (so the master fails at start)."""
        if cert is None and key is None:
            return None
        if cert is None or key is None:
            missing = "--tls-cert" if cert is None else "--tls-key"
            raise InvalidInput.one(missing, "give both --tls-cert and --tls-key, or neither")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(cert, key)
        except FileNotFoundError as err:
            raise InvalidInput.one("--tls-cert/--tls-key", f"{err.filename}: no such file") from err
        except (OSError, ssl.SSLError) as err:
            raise InvalidInput.one(
                "--tls-cert/--tls-key",
                f"cannot load {cert} with {key}: {err}; give a PEM certificate and its PEM private key",
            ) from err
        return cls(cert=cert, key=key)


def parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidInput.one("--listen", f"'{listen}' is not HOST:PORT, e.g. 127.0.0.1:8470")
    return host.strip("[]") or "0.0.0.0", int(port)


def parse_advertise_url(url: str) -> str:
    """``--advertise-url``: where the other masters reach this one (their links to its agents, the
    logs and exec they pass on): http(s)://HOST[:PORT], without a path."""
    parsed = urlsplit(url.strip())
    problem = None
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        problem = "is not http://HOST[:PORT] or https://HOST[:PORT]"
    elif parsed.path not in ("", "/") or parsed.query or parsed.fragment or parsed.username:
        problem = "must be only the scheme, host and port (no path, query or user)"
    else:
        try:
            parsed.port  # noqa: B018 - raises for a port that is not a number in range
        except ValueError:
            problem = "has a port that is not a number from 1 to 65535"
    if problem is not None:
        raise InvalidInput.one("--advertise-url", f"'{url}' {problem}, e.g. http://10.0.0.5:8470")
    return f"{parsed.scheme}://{parsed.netloc}"


_sqlite_locks: list[int] = []  # the lock files' descriptors, held while the process lives


def hold_sqlite_store(database: Path) -> None:
    """One SQLite file serves one master: hold ``<file>.master-lock`` (flock, dropped by the
    kernel when the process ends), or refuse to start while another master holds it."""
    lock = database.with_name(database.name + ".master-lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise MoorageError(
            f"Another master (pid {holder}) already serves the SQLite store {database}: one SQLite "
            "file serves one master. Stop that master first, or run several masters on one "
            "PostgreSQL database (--db postgresql://USER@HOST/DB)"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _sqlite_locks.append(fd)


def prepare(config: MasterConfig) -> tuple[Database, str | None]:
    """Create the data dir, migrate the store, and make the admin token on first start.

    Returns the store and the new admin token (None if one existed already, or another master
    starting on the same PostgreSQL made it: that master's data dir has it).
    """
    config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    db = Database(config.database_url, events_kept=config.events_kept)
    database = make_url(db.url).database
    if db.is_sqlite and database and database != ":memory:":
        hold_sqlite_store(Path(database))
    db.migrate()
    with db.session() as session:
        if db.is_sqlite:  # on PostgreSQL other masters may hold agents: the leader sweeps the dead's
            mark_all_offline(session)
        prune_all_events(session, config.events_kept)
    token: str | None = None
    try:
        with db.session() as session:
            if not has_admin_token(session):
                token = create_admin_token(session).secret
    except (IntegrityError, Conflict):  # another master starting at the same moment made it
        token = None
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
        f"Moorage master on {config.url} (store: {db.engine.url!r}; "
        f"admin token file: {config.data_dir / 'admin.token'})",
        flush=True,
    )
    app = create_app(db, config.settings, config.identity)
    freeze_startup_heap()  # what start-up built lives as long as the process: collections skip it
    server = _Server(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            log_level="warning",
            access_log=False,  # no log line per request (uvicorn would format and drop each one)
            ws_ping_interval=None,
            ws_max_size=MAX_MESSAGE_BYTES,  # a bigger frame closes that agent's socket with 1009
            timeout_graceful_shutdown=5,
            http=LimitedHttpProtocol,  # request headers: a deadline and a size limit
            timeout_keep_alive=5,  # an idle kept-alive connection closes after 5 s
            h11_max_incomplete_event_size=MAX_HEADER_BYTES,  # the same limit if h11 serves instead
            ssl_certfile=config.tls.cert if config.tls else None,
            ssl_keyfile=config.tls.key if config.tls else None,
        ),
        before_shutdown=partial(stop_rollouts, app),
    )
    server.run()
    db.dispose()


class _Server(uvicorn.Server):
    """uvicorn, with a step before its shutdown: it closes every connection (the agents' too)
    before the app's lifespan ends, and the rollouts must stop before any node looks offline."""

    def __init__(self, config: uvicorn.Config, before_shutdown: Callable[[], Awaitable[None]]) -> None:
        super().__init__(config)
        self.before_shutdown = before_shutdown

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self.before_shutdown()
        await super().shutdown(sockets)

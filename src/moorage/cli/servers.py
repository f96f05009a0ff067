"""The long-running commands: ``moorage master`` (and ``moorage master status``: the masters of
the store and which leads), ``moorage agent``, ``moorage up``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from moorage.errors import InvalidInput, MoorageError

__all__ = ["default_data_dir", "register"]

UP_LISTEN = "127.0.0.1:8470"
UP_GRID = "local"


def default_data_dir(part: str) -> Path:
    override = os.environ.get("MOORAGE_DATA_DIR")
    if override:
        return Path(override) / part
    if os.geteuid() == 0:
        return Path("/var/lib/moorage") / part
    return Path.home() / ".local/share/moorage" / part


master_app = typer.Typer(
    help="Run the master (options below), or see the masters serving its store: 'moorage master status'.",
    invoke_without_command=True,
)


@master_app.callback(invoke_without_command=True)
def master(
    ctx: typer.Context,
    listen: Annotated[str, typer.Option("--listen", help="HOST:PORT to serve on")] = "127.0.0.1:8470",
    db: Annotated[
        str | None, typer.Option("--db", help="Database URL; default a SQLite file in --data-dir")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Where the master keeps its files")
    ] = None,
    heartbeat_interval: Annotated[
        float,
        typer.Option("--heartbeat-interval", help="Seconds between agent heartbeats; 3 missed = offline"),
    ] = 5.0,
    tls_cert: Annotated[
        Path | None, typer.Option("--tls-cert", help="Serve HTTPS/WSS with this certificate chain (PEM)")
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option("--tls-key", help="The certificate's private key (PEM)")
    ] = None,
    events_kept: Annotated[
        int,
        typer.Option("--events-kept", help="Events kept per grid (moorage events); older ones are pruned"),
    ] = 10_000,
    metrics_without_token: Annotated[
        bool,
        typer.Option(
            "--metrics-without-token", help="Serve GET /metrics to anyone (default: an admin token)"
        ),
    ] = False,
    retired_retention: Annotated[
        float,
        typer.Option(
            "--retired-retention",
            help="Days a moved volume's source copy is kept (retired) before it is purged",
        ),
    ] = 7.0,
    name: Annotated[
        str | None,
        typer.Option(
            "--name", help="How other masters of the store show this one (default: the --listen address)"
        ),
    ] = None,
    advertise_url: Annotated[
        str | None,
        typer.Option(
            "--advertise-url",
            help="Where the other masters of the store reach this one, e.g. http://10.0.0.5:8470 "
            "(default: the --listen address; give it when listening on 0.0.0.0)",
        ),
    ] = None,
) -> None:
    """Run the master: REST API, web console (/ui), metrics (/metrics), agent hub, and the store.
    Several masters on one PostgreSQL (--db postgresql://...) serve the same API: put them behind
    a load balancer, or give agents every master's URL."""
    if ctx.invoked_subcommand is not None:
        return
    from datetime import timedelta

    from moorage.master.server import MasterConfig, MasterTls, parse_advertise_url, parse_listen, run_master
    from moorage.master.settings import MasterSettings

    if heartbeat_interval <= 0:
        raise InvalidInput.one("--heartbeat-interval", "must be more than 0 seconds")
    if events_kept < 1:
        raise InvalidInput.one("--events-kept", "must be at least 1")
    if not 0 < retired_retention <= 36500:
        raise InvalidInput.one("--retired-retention", "must be more than 0 days (and at most 36500)")
    host, port = parse_listen(listen)
    advertised = parse_advertise_url(advertise_url) if advertise_url is not None else None
    run_master(
        MasterConfig(
            host=host,
            port=port,
            data_dir=data_dir or default_data_dir("master"),
            db_url=db,
            settings=MasterSettings(
                heartbeat_interval=heartbeat_interval,
                metrics_need_token=not metrics_without_token,
                retired_retention=timedelta(days=retired_retention),
                tls_chain=tls_cert,
            ),
            tls=MasterTls.checked(tls_cert, tls_key),
            events_kept=events_kept,
            name=name,
            advertise_url=advertised,
        )
    )


def _join_token(token: str | None, token_file: Path | None) -> str | None:
    """The join token from --token-file (or --token / MOORAGE_JOIN_TOKEN); None if not given."""
    if token_file is None:
        return token.strip() if token and token.strip() else None
    if token:
        raise InvalidInput.one("--token-file", "give the join token once: --token-file or --token, not both")
    try:
        value = token_file.read_text().strip()
    except (OSError, UnicodeDecodeError) as err:
        raise InvalidInput.one("--token-file", f"cannot read {token_file}: {err}") from err
    if not value:
        raise InvalidInput.one("--token-file", f"{token_file} is empty; write the grid's join token in it")
    return value


def agent(
    master_url: Annotated[
        list[str],
        typer.Option(
            "--master",
            help="Master URL, e.g. http://10.0.0.1:8470; several masters of one store: repeat it or "
            "separate them by commas (the agent moves to the next when its master goes away)",
        ),
    ],
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="MOORAGE_JOIN_TOKEN",
            show_envvar=True,
            help="The grid's join token; on the command line it shows in 'ps': prefer --token-file "
            "or MOORAGE_JOIN_TOKEN. Needed only until the node has its own credential",
        ),
    ] = None,
    token_file: Annotated[
        Path | None, typer.Option("--token-file", help="Read the grid's join token from this file")
    ] = None,
    ca: Annotated[
        Path | None, typer.Option("--ca", help="Trust only this CA (PEM) for an https:// master")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Node name (default: host name)")] = None,
    docker_host: Annotated[
        str | None,
        typer.Option("--docker-host", help="Engine URL (default: DOCKER_HOST or the local socket)"),
    ] = None,
    label: Annotated[
        list[str] | None, typer.Option("--label", help="k=v label for a new node (repeat)")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Where the agent keeps the node id and credential")
    ] = None,
    plugin_dir: Annotated[
        Path, typer.Option("--plugin-dir", help="Folder of the engine's legacy plugin sockets")
    ] = Path("/run/docker/plugins"),
    restic: Annotated[
        str | None,
        typer.Option("--restic", help="The restic binary backups run (default: restic on PATH)"),
    ] = None,
    helper_image: Annotated[
        str,
        typer.Option(
            "--helper-image",
            help="Image of the helper containers that read and write volume data (moves): needs busybox's tar",
        ),
    ] = "busybox:1.36",
) -> None:
    """Run an agent: join the grid and converge this node's Docker Engine."""
    import socket

    from moorage.agent.identity import load_credential
    from moorage.agent.runner import AgentConfig, run_agent
    from moorage.model.names import NODE
    from moorage.model.node import label_error

    labels = tuple(label or ())
    problems = {f"--label {v}": p for v in labels if (p := label_error(v))}
    node_name = name or socket.gethostname()
    if (problem := NODE.error(node_name)) is not None:
        problems["--name"] = problem
    if ca is not None and not ca.is_file():
        problems["--ca"] = (
            f"{ca}: no such file; give the PEM file of the CA that signed the master's certificate"
        )
    masters = tuple(url.strip() for given in master_url for url in given.split(",") if url.strip())
    if not masters:
        problems["--master"] = "give the master's URL, e.g. http://10.0.0.1:8470"
    if problems:
        raise InvalidInput(problems)
    join_token = _join_token(token, token_file)
    agent_dir = data_dir or default_data_dir("agent")
    if join_token is None and load_credential(agent_dir) is None:
        raise InvalidInput.one(
            "--token-file",
            f"this node has no credential in {agent_dir} yet: give the grid's join token with "
            "--token-file F or MOORAGE_JOIN_TOKEN ('moorage grid token --rotate' makes one)",
        )
    run_agent(
        AgentConfig(
            masters=masters,
            token=join_token,
            ca=ca,
            name=node_name,
            docker_host=docker_host,
            labels=labels,
            data_dir=agent_dir,
            plugin_dir=plugin_dir,
            restic=restic,
            helper_image=helper_image,
        )
    )


def _wait_for_master(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    from moorage.client.api import MasterClient

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise MoorageError(f"The master exited with status {proc.returncode}; see its output above")
        try:
            with MasterClient(url, None, timeout=2) as client:
                client.get("/v1/ping")
                return
        except MoorageError:
            time.sleep(0.2)
    raise MoorageError(f"The master did not answer on {url} within {timeout:.0f}s")


def _local_images(cache: Path) -> str:
    """Make the README's images (``redis:local``, ``busybox:local``) available on the local engine,
    built from this host's binaries as the testbed does: no registry needed. Returns what it did."""
    from moorage.testbed.images import build_images, import_images

    docker_host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    images = build_images(cache)
    imported = import_images(docker_host, images)
    refs = ", ".join(image.ref for image in images)
    return f"imported {', '.join(imported)}" if imported else f"{refs} already there"


def up(
    listen: Annotated[str, typer.Option("--listen", help="HOST:PORT for the master")] = UP_LISTEN,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Master and agent files")] = None,
) -> None:
    """A master and one agent on the local Docker Engine, in the foreground (Ctrl-C stops both)."""
    from moorage.cli.context import save_config
    from moorage.client.api import MasterClient

    base = data_dir or default_data_dir("")
    master_dir = base / "master"
    url = f"http://{listen}"
    exe = [sys.executable, "-m", "moorage"]
    master_proc = subprocess.Popen([*exe, "master", "--listen", listen, "--data-dir", str(master_dir)])
    procs = [master_proc]
    try:
        try:
            images = _local_images(base / "images")
        except MoorageError as err:  # the engine or busybox/redis missing: say so, run anyway
            images = f"not imported ({err.message})"
        _wait_for_master(url, master_proc)
        token_file = master_dir / "admin.token"
        token = token_file.read_text().strip()
        with MasterClient(url, token) as client:
            grids = [g["name"] for g in client.get("/v1/grids")["grids"]]
            if UP_GRID not in grids:
                join = client.post("/v1/grids", {"name": UP_GRID})["join_token"]
            else:  # shown only when made: a new one (the agent reconnects with its own credential)
                join = client.post(f"/v1/grids/{UP_GRID}/token")["token"]
        agent_cmd = [
            *exe,
            "agent",
            "--master",
            url,
            "--data-dir",
            str(base / "agent"),
            "--helper-image",
            "busybox:local",
        ]
        procs.append(subprocess.Popen(agent_cmd, env={**os.environ, "MOORAGE_JOIN_TOKEN": join}))
        save_config(url=url, token=token, grid=UP_GRID)
        print(
            f"\nMoorage is up: master {url}, grid '{UP_GRID}', one agent on the local Docker Engine.\n"
            f"Admin token in {token_file}; local images: {images}.\n"
            "In another terminal (the CLI is already logged in):\n"
            "  moorage node ls\n"
            "  moorage volume create --scope instance --driver local redis-data\n"
            "Press Ctrl-C to stop.\n",
            flush=True,
        )
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        raise MoorageError("A Moorage process exited; see its output above")
    except KeyboardInterrupt:
        print("\nStopping…", flush=True)
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(procs):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@master_app.command("status")
def status(
    ctx: typer.Context,
    json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """The masters serving this store (seen in the last seconds), which one leads (rolls deployments
    out), which one answered, and how many agents each holds."""
    from moorage.cli.context import CliContext
    from moorage.cli.output import ago, print_json, table

    cli: CliContext = ctx.find_root().obj
    with cli.client() as client:
        answer = client.get("/v1/masters")
    if json:
        print_json(answer)
        return
    table(
        ["NAME", "URL", "LEADER", "AGENTS", "STARTED", "SEEN", "ANSWERED"],
        [
            (
                m["name"],
                m["url"] or "-",
                "yes" if m["leader"] else "-",
                m["nodes"],
                ago(m["started_at"]),
                ago(m["seen_at"]),
                "yes" if m["this"] else "-",
            )
            for m in answer["masters"]
        ],
    )
    if answer["leader"] is None:
        print("No master leads right now: one takes over within seconds.")


def register(app: typer.Typer) -> None:
    app.add_typer(master_app, name="master")
    app.command("agent")(agent)
    app.command("up")(up)

"""Messages between agents and the master over the agent WebSocket (``/v1/agent``).

Agent → master: ``hello`` (first), ``info`` (when anything changed), ``heartbeat``,
``status`` (what the engine has for the desired containers and volumes, after each convergence).
Master → agent: ``welcome`` (after hello), ``error`` (then the master closes), ``desired`` (the
whole desired state of the node: containers and volumes; sent on connect and whenever it changes).
Both ways, after the welcome: the messages of logs and exec streams (see "streams" below).

Who may say hello: the handshake carries ``Authorization: Bearer`` with either the grid's join
token (admits a node id the master does not know yet) or the node's own credential (the node it
names and no other). ``welcome`` carries a new credential the first time a node is admitted (and
once for a node that joined before credentials existed); the agent keeps it in its data dir.
Every frame is JSON text of at most ``MAX_MESSAGE_BYTES``, except the binary data frames of
streams once both sides said they take them ("data frames" below); anything else closes the
connection with a reason.

The agent is level-triggered: it converges its engine to the last ``desired`` it received, on a
timer as well as when a new one arrives, so a missed message only delays convergence.

Every message is one JSON object with a ``type``. Both sides validate with these models.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_serializer,
    field_validator,
)

from moorage.model.names import NODE
from moorage.model.node import node_id_error

__all__ = [
    "AGENT_PATH",
    "BACKUP_AGENT_MESSAGES",
    "MAX_MESSAGE_BYTES",
    "MAX_STREAMS_PER_NODE",
    "STREAM_CHUNK_BYTES",
    "STREAM_WINDOW_BYTES",
    "VOLUME_CHUNK_BYTES",
    "VOLUME_WINDOW_BYTES",
    "AgentMessage",
    "BackupRun",
    "BackupVolume",
    "ContainerSpec",
    "Desired",
    "DockerVolumeWire",
    "DriverWire",
    "ErrorMsg",
    "ExecOpen",
    "Heartbeat",
    "Hello",
    "InfoMsg",
    "InstanceStatus",
    "JobDone",
    "JobProgress",
    "LogsOpen",
    "MasterMessage",
    "MountWire",
    "NodeInfoWire",
    "PortWire",
    "RepositoryWire",
    "RestoreRun",
    "SnapshotTaken",
    "StatusMsg",
    "StreamCancel",
    "StreamCredit",
    "StreamEnd",
    "StreamInput",
    "StreamOutput",
    "StreamResize",
    "StreamStarted",
    "VolumeOpen",
    "VolumeSpec",
    "VolumeStatus",
    "Welcome",
    "agent_data_frame",
    "agent_message",
    "data_frame",
    "master_data_frame",
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
    binary_data: bool = False  # takes and sends stream data as binary frames (see "data frames")

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


# -- drift (issue 15): the Docker volumes of Moorage's on a node, as the engine has them ---------
#
# In every status report: each Docker volume labelled as a volume instance, and each one the
# desired state names (an adopted one may lack the labels), with the driver, options and labels
# the engine lists for it. The master compares driver and options with the volume's definition
# (``model.volume.volume_drift``). None: an agent that does not report them.


class DockerVolumeWire(_Msg):
    name: str
    driver: str
    options: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)


class StatusMsg(_Msg):
    type: Literal["status"] = "status"
    instances: list[InstanceStatus] = Field(default_factory=list)
    volumes: list[VolumeStatus] = Field(default_factory=list)
    # the ``seq`` of the desired state this report answers (converged after it arrived); an
    # agent sends one report after each desired state, changed or not. None: counts as the latest
    desired_seq: int | None = None
    docker_volumes: list[DockerVolumeWire] | None = None  # see "drift" above


class Heartbeat(_Msg):
    type: Literal["heartbeat"] = "heartbeat"


class Welcome(_Msg):
    type: Literal["welcome"] = "welcome"
    node_id: str
    name: str
    grid: str
    heartbeat_interval: float
    credential: str | None = None  # this node's own secret, sent once: keep it, present it next time
    binary_data: bool = False  # the hello asked for binary data frames and this master takes them


class Desired(_Msg):
    type: Literal["desired"] = "desired"
    seq: int | None = None  # numbers the pushes to a node; its next report names the one it answers
    containers: list[ContainerSpec] = Field(default_factory=list)
    volumes: list[VolumeSpec] = Field(default_factory=list)
    remove_volumes: list[VolumeSpec] = Field(default_factory=list)  # delete these (only if labelled ours)


class ErrorMsg(_Msg):
    type: Literal["error"] = "error"
    message: str


# -- streams: logs and exec, multiplexed over the agent's connection by a stream id -------------
#
#   master ── logs | exec ──▶ agent          open a stream (the master picks the id)
#   master ◀── started | end ── agent        the engine took it, or refused it (end.error)
#   master ◀── output ── agent               ≤ STREAM_CHUNK_BYTES of stdout (fd 1) or stderr (fd 2)
#   master ── stdin | resize ──▶ agent       exec only
#   both ── credit ──▶                       the receiver consumed that many bytes: send more
#   master ── cancel ──▶ agent               the client went away: stop, close the engine's stream
#   master ◀── end ── agent                  done: exit_code (exec) or error
#
# Flow control: neither side sends more than STREAM_WINDOW_BYTES on one stream that the other has
# not credited back (counted in raw bytes), so a fast log or a large stdin never piles up in the
# peer's memory; a receiver credits once it has passed on STREAM_CHUNK_BYTES or emptied its queue.


STREAM_CHUNK_BYTES = 32 * 1024
STREAM_WINDOW_BYTES = 8 * STREAM_CHUNK_BYTES
# volume data streams (``VolumeOpen``) carry a volume's bytes: bigger pieces, a bigger window
VOLUME_CHUNK_BYTES = 1024 * 1024
VOLUME_WINDOW_BYTES = 8 * VOLUME_CHUNK_BYTES
MAX_STREAMS_PER_NODE = 16  # logs and exec streams open at once on one node's connection

StreamId = Annotated[str, Field(pattern=r"^[A-Za-z0-9]{1,32}$")]


def _base64(value: object) -> object:
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error as err:
            raise ValueError("is not base64") from err
    return value


Chunk = Annotated[
    bytes,
    BeforeValidator(_base64),
    PlainSerializer(lambda data: base64.b64encode(data).decode("ascii"), return_type=str),
    Field(max_length=VOLUME_CHUNK_BYTES),
]
"""Raw bytes, base64 on the wire (frames are JSON text): at most ``STREAM_CHUNK_BYTES`` on logs and
exec streams, ``VOLUME_CHUNK_BYTES`` on volume streams (the receiver holds each to its window)."""


class LogsOpen(_Msg):
    """Send the container's logs on this stream (``docker logs``); with ``follow``, until cancelled."""

    type: Literal["logs"] = "logs"
    stream: StreamId
    container: str
    follow: bool = False
    tail: int | None = Field(default=None, ge=0)  # the last N lines; None: all
    since: float | None = Field(default=None, ge=0)  # unix seconds
    timestamps: bool = False


class ExecOpen(_Msg):
    """Run ``cmd`` in the container (``docker exec``): output on this stream, then its exit code."""

    type: Literal["exec"] = "exec"
    stream: StreamId
    container: str
    cmd: list[Annotated[str, Field(max_length=65536)]] = Field(min_length=1, max_length=4096)
    tty: bool = False
    stdin: bool = False  # keep the command's stdin open for ``stdin`` messages
    width: int | None = Field(default=None, ge=1, le=65535)
    height: int | None = Field(default=None, ge=1, le=65535)


class StreamInput(_Msg):
    type: Literal["stdin"] = "stdin"
    stream: StreamId
    data: Chunk = b""
    eof: bool = False  # after ``data``: close the command's stdin


class StreamResize(_Msg):
    type: Literal["resize"] = "resize"
    stream: StreamId
    width: int = Field(ge=1, le=65535)
    height: int = Field(ge=1, le=65535)


class StreamCancel(_Msg):
    type: Literal["cancel"] = "cancel"
    stream: StreamId


class StreamCredit(_Msg):
    """Either way: the sender of this passed on ``bytes`` more of the stream's data."""

    type: Literal["credit"] = "credit"
    stream: StreamId
    bytes: int = Field(gt=0, le=VOLUME_WINDOW_BYTES)


class StreamStarted(_Msg):
    type: Literal["started"] = "started"
    stream: StreamId


class StreamOutput(_Msg):
    type: Literal["output"] = "output"
    stream: StreamId
    fd: Literal[1, 2] = 1  # stdout, stderr
    data: Chunk


class StreamEnd(_Msg):
    """The stream is over: the exec's ``exit_code``, or what went wrong (``error``), or neither
    (a log without ``follow`` was read to its end)."""

    type: Literal["end"] = "end"
    stream: StreamId
    exit_code: int | None = None
    error: str | None = None


# -- data frames: stream output and input as binary WebSocket frames ------------------------------
#
# An agent whose hello says ``binary_data``, welcomed by a master whose welcome says it too, sends
# and takes the data of ``output`` and ``stdin`` as binary frames instead of base64 in JSON (a
# volume move's gigabytes are then never encoded, parsed or re-encoded on the way):
#
#   b"O" | id length (1 byte) | stream id | fd (1 byte: 1 or 2) | data     output, agent -> master
#   b"I" | id length (1 byte) | stream id | data                           stdin, master -> agent
#
# The same rules as the JSON messages (a ``StreamId``, data at most VOLUME_CHUNK_BYTES, the same
# windows); ``eof`` and every other message stay JSON text. A binary frame from a peer that did not
# ask for them, or a malformed one, closes the connection with the reason.

_OUTPUT_TAG = b"O"[0]
_INPUT_TAG = b"I"[0]
_STREAM_ID_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")


def data_frame(msg: StreamOutput | StreamInput) -> bytes:
    """The binary frame carrying ``msg``'s data (an input's ``eof`` goes as JSON instead)."""
    sid = msg.stream.encode("ascii")
    if isinstance(msg, StreamOutput):
        return b"".join((b"O", bytes((len(sid),)), sid, bytes((msg.fd,)), msg.data))
    if msg.eof:
        raise ValueError("an input with eof goes as JSON text")
    return b"".join((b"I", bytes((len(sid),)), sid, msg.data))


def _frame_stream(frame: bytes) -> tuple[str, int]:
    """The stream id of a data frame and where what follows it starts."""
    if len(frame) < 2:
        raise ValueError("too short for a data frame")
    end = 2 + frame[1]
    sid = frame[2:end]
    if not sid or len(sid) > 32 or len(frame) < end or not _STREAM_ID_CHARS.issuperset(sid):
        raise ValueError("its stream id is not 1 to 32 letters and digits")
    return sid.decode("ascii"), end


def _frame_data(frame: bytes, start: int) -> bytes:
    if len(frame) - start > VOLUME_CHUNK_BYTES:
        raise ValueError(f"it carries more than {VOLUME_CHUNK_BYTES} bytes of data")
    return frame[start:]


def agent_data_frame(frame: bytes) -> StreamOutput:
    """Parse one agent -> master data frame (``ValueError`` saying what is wrong with it)."""
    if not frame or frame[0] != _OUTPUT_TAG:
        raise ValueError("an agent's binary frame must be stream output (b'O')")
    sid, end = _frame_stream(frame)
    if len(frame) <= end or frame[end] not in (1, 2):
        raise ValueError("its fd is not 1 or 2")
    fd: Literal[1, 2] = 1 if frame[end] == 1 else 2
    return StreamOutput.model_construct(stream=sid, fd=fd, data=_frame_data(frame, end + 1))


def master_data_frame(frame: bytes) -> StreamInput:
    """Parse one master -> agent data frame (``ValueError`` saying what is wrong with it)."""
    if not frame or frame[0] != _INPUT_TAG:
        raise ValueError("a master's binary frame must be stream input (b'I')")
    sid, end = _frame_stream(frame)
    return StreamInput.model_construct(stream=sid, data=_frame_data(frame, end), eof=False)


# -- backups: restic snapshots of Docker volumes, restores and verifies, run by agents ----------
#
#   master ── backup_run ──▶ agent      pause|stop|none the containers, one snapshot per volume
#   master ── restore_run ──▶ agent     restore a snapshot into a Docker volume (new, or over one)
#   master ◀── job_progress ── agent    bytes and files read or written so far
#   master ◀── job_done ── agent        the snapshots taken (backup), the manifest (restore), or error
#
# The repository's password travels only in these messages (over the agent's own connection) and
# is never shown: ``repr`` hides it, the agent hands it to restic in a file of its own (0600).


class RepositoryWire(_Msg):
    url: str
    password: SecretStr

    @field_serializer("password", when_used="json")
    def _reveal(self, password: SecretStr) -> str:
        return password.get_secret_value()


class BackupVolume(_Msg):
    docker_volume: str
    host: str  # restic --host: one per volume instance (model/backup.restic_host)
    tags: list[str] = Field(default_factory=list)
    # the last backup of this Docker volume: restic's parent, and its manifest, whose entries the
    # agent keeps for the files restic found unchanged (only the others are read again)
    parent: str | None = None
    parent_manifest: list[Any] | None = None


class BackupRun(_Msg):
    type: Literal["backup_run"] = "backup_run"
    job: str
    repository: RepositoryWire
    volumes: list[BackupVolume] = Field(min_length=1)
    quiesce: Literal["pause", "stop", "none"] = "pause"
    containers: list[str] = Field(default_factory=list)  # paused/stopped for the read (one window)
    pause_limit: float = Field(default=600.0, gt=0, le=86400)  # the watchdog unpauses after this


class RestoreRun(_Msg):
    type: Literal["restore_run"] = "restore_run"
    job: str
    repository: RepositoryWire
    snapshot: str
    docker_volume: str
    create: VolumeSpec | None = None  # make this Docker volume first (it must not exist yet)
    replace: bool = False  # restore over the volume's data (staged first: a failure leaves it as it was)
    stop: list[str] = Field(default_factory=list)  # containers stopped for the restore, started after
    scratch: bool = False  # verify: manifest of what was restored, then the volume is removed
    expect: list[Any] | None = None  # verify: the manifest recorded at backup time, to compare with


class JobProgress(_Msg):
    type: Literal["job_progress"] = "job_progress"
    job: str
    bytes_done: int = 0
    bytes_total: int = 0
    files_done: int = 0
    files_total: int = 0
    seconds: float = 0.0


class SnapshotTaken(_Msg):
    docker_volume: str
    snapshot: str  # restic's id as its backup printed it (the short one, restic 0.14)
    snapshot_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")  # the full id, where known
    time: datetime | None = None  # the snapshot's time, as given to restic (``backup --time``)
    size: int
    files: int
    added: int
    duration: float
    manifest: list[Any] | None = None  # agent/volume_manifest.to_json's rows, read in the same window


class JobDone(_Msg):
    type: Literal["job_done"] = "job_done"
    job: str
    error: str | None = None
    snapshots: list[SnapshotTaken] = Field(default_factory=list)
    seconds: float = 0.0
    bytes: int = 0
    files: int = 0


BACKUP_AGENT_MESSAGES = (JobProgress, JobDone)


# -- volume data streams: a Docker volume's data through a helper container (agent/volume_data.py) --
#
#   master ── volume(op) ──▶ agent       read:   the volume's data (or ``paths``) as a tar stream
#                                        write:  stdin is a tar stream to extract (the Docker
#                                                volume is made first with driver/opts/labels)
#                                        manifest: volume_manifest.to_json of all (or ``paths``)
#                                        stats: volume_stats.to_json (stat of every path, no data)
#                                        remove_paths | drop (the volume, if it has ``labels``)
#                                        usage: {"bytes", "files"} | users: [container names]
#   then as any stream: started | output | stdin | credit | end (error: what failed)
# A volume stream's window is VOLUME_WINDOW_BYTES, its pieces at most VOLUME_CHUNK_BYTES.

VolumeOp = Literal["read", "write", "manifest", "stats", "remove_paths", "drop", "usage", "users"]


class VolumeOpen(_Msg):
    type: Literal["volume"] = "volume"
    stream: StreamId
    op: VolumeOp
    volume: str = Field(min_length=1, max_length=255)  # the Docker volume name
    paths: list[Annotated[str, Field(max_length=4096)]] | None = Field(default=None, max_length=100_000)
    driver: str | None = None  # write: make the Docker volume with these if it is not there
    driver_opts: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)  # write: it must carry these; drop: the same


AnyAgentMessage = (
    Hello
    | InfoMsg
    | Heartbeat
    | StatusMsg
    | StreamStarted
    | StreamOutput
    | StreamEnd
    | StreamCredit
    | JobProgress
    | JobDone
)
AnyMasterMessage = (
    Welcome
    | ErrorMsg
    | Desired
    | LogsOpen
    | ExecOpen
    | VolumeOpen
    | StreamInput
    | StreamResize
    | StreamCancel
    | StreamCredit
    | BackupRun
    | RestoreRun
)
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

"""The pause watchdog: unpauses containers a backup paused once a time limit has passed, even if
the agent that paused them, the master or the backup died meanwhile.

The agent starts it as a process of its own session (``start``) before it pauses anything: a
killed agent does not take it along. It sleeps until the deadline, then unpauses each container
that is still paused, and exits. An agent whose backup ends in time unpauses the containers
itself and ends the watchdog (``Watchdog.cancel``).

    python -m moorage.agent.pause_watchdog --docker-host URL --seconds N CONTAINER...
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Watchdog", "main", "start"]


@dataclass
class Watchdog:
    process: subprocess.Popen[bytes]

    def cancel(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)


def start(docker_host: str | None, seconds: float, containers: Sequence[str]) -> Watchdog:
    argv = [sys.executable, "-m", "moorage.agent.pause_watchdog", "--seconds", f"{seconds:.3f}"]
    if docker_host:
        argv += ["--docker-host", docker_host]
    process = subprocess.Popen(
        [*argv, *containers],
        start_new_session=True,  # not in the agent's process group: a killed agent leaves it running
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=None,
    )
    return Watchdog(process)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="moorage.agent.pause_watchdog")
    parser.add_argument("--docker-host", default=None)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("containers", nargs="+")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.seconds
    time.sleep(max(0.0, deadline - time.monotonic()))
    # imported only now: until the deadline the watchdog costs an interpreter and no more (docker's
    # client would take a tenth of a CPU-second from the backup it watches, at the window's start)
    from moorage.agent.engine import DockerJobs, Engine, EngineError

    engine = Engine(args.docker_host)
    jobs = DockerJobs(engine)
    for name in args.containers:
        try:
            if jobs.status(name) == "paused":
                jobs.unpause(name)
                print(f"pause watchdog: unpaused {name} after {args.seconds:.0f}s", file=sys.stderr)
        except EngineError as err:
            print(f"pause watchdog: {name}: {err.message}", file=sys.stderr)
    engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

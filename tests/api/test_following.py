"""The CLI following a deployment (real master, the real CLI, a fake agent on the real socket):
a newer deployment that supersedes it, and a master that restarts under it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.fake_agent import FakeNode
from tests.support.processes import MasterProcess
from tests.support.waiting import wait_until


def _cli(master: MasterProcess, grid: str, tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOORAGE_")}
    env.update(
        MOORAGE_CONFIG=str(tmp_path / "config.json"),
        MOORAGE_URL=master.url,
        MOORAGE_TOKEN=master.admin_token,
        MOORAGE_GRID=grid,
    )
    return subprocess.Popen(
        [sys.executable, "-m", "moorage", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    return proc.returncode, out + err


def _service(client: httpx.Client, grid: str) -> None:
    created = client.post(
        f"/v1/services/{grid}", json={"name": "web", "image": "busybox:local", "cmd": "sleep 3600"}
    )
    assert created.status_code == 201, created.text


def test_a_superseded_deployment_says_so_and_exits_by_the_newer_ones_outcome(
    master: MasterProcess, grid: str, tmp_path: Path
) -> None:
    with master.client() as client:
        _service(client, grid)
        token = client.post(f"/v1/grids/{grid}/token").json()["token"]
        with FakeNode(master.url, token, "node-1", reporting=False) as node:
            wait_until(lambda: node.welcomes, 10, "the fake node to join")
            proc = _cli(master, grid, tmp_path, "service", "deploy", "web")
            try:
                wait_until(lambda: node.containers, 15, "the CLI's deployment to reach the node")
                newer = client.post(f"/v1/services/{grid}/null/web/deploy").json()["deployment"]
                wait_until(lambda: node.desired_count >= 2, 15, "the newer deployment to reach the node")
                node.reporting.set()
            finally:
                code, text = _finish(proc)
        assert code == 0, text
        found = re.search(
            rf"Deployment (\w+) of service web was superseded by deployment {newer}; following", text
        )
        assert found, text
        assert "Deployed service web: 1 instance(s) running" in text
        assert "some instances are not running" not in text
        first = client.get(f"/v1/deployments/{found.group(1)}").json()
        assert (first["state"], first["superseded_by"]) == ("error", newer)
        assert "superseded by a newer deployment" in first["message"]
        done = client.get(f"/v1/deployments/{newer}").json()
        assert (done["state"], done["superseded_by"]) == ("success", None)


def test_a_deployment_that_finished_before_the_next_began_is_not_superseded(
    master: MasterProcess, grid: str
) -> None:
    with master.client() as client:
        _service(client, grid)
        token = client.post(f"/v1/grids/{grid}/token").json()["token"]
        with FakeNode(master.url, token, "node-1") as node:
            wait_until(lambda: node.welcomes, 10, "the fake node to join")
            ids = []
            for _ in range(2):
                ids.append(client.post(f"/v1/services/{grid}/null/web/deploy").json()["deployment"])
                wait_until(
                    lambda: client.get(f"/v1/deployments/{ids[-1]}").json()["state"] == "success",
                    15,
                    "the deployment to succeed",
                )
        assert client.get(f"/v1/deployments/{ids[0]}").json()["superseded_by"] is None


def test_following_goes_on_through_a_master_restart(fresh_master: MasterProcess, tmp_path: Path) -> None:
    master = fresh_master
    with master.client() as client:
        client.post("/v1/grids", json={"name": "g"}).raise_for_status()
        _service(client, "g")
        token = client.post("/v1/grids/g/token").json()["token"]
    with FakeNode(master.url, token, "node-1", reporting=False) as node:
        wait_until(lambda: node.welcomes, 10, "the fake node to join")
        proc = _cli(master, "g", tmp_path, "service", "deploy", "web")
        try:
            wait_until(lambda: node.containers, 15, "the CLI's deployment to reach the node")
            master.stop()  # SIGTERM
            master.start()  # same address and data
            wait_until(lambda: node.welcomes >= 2, 15, "the fake node to join the restarted master")
            node.reporting.set()
        finally:
            code, text = _finish(proc)
    assert "Error: Cannot reach the master" not in text
    assert "Lost the master" in text
    followed = re.search(r"Reconnected to the master; following deployment (\w+)", text)
    assert followed, text
    with master.client() as client:
        outcome = client.get(f"/v1/deployments/{followed.group(1)}").json()
    assert outcome["state"] != "running"
    assert code == (0 if outcome["state"] == "success" else 1), text


def test_a_waiting_look_at_a_deployment_answers_when_it_ends(master: MasterProcess, grid: str) -> None:
    """``GET /v1/deployments/{id}?wait=S`` answers a running deployment when it ends or an agent
    reported something, not after S: a client that looks again at each answer, as the CLI does,
    sees the end at once, with a few looks, not one per poll interval."""
    import threading
    import time

    with master.client() as client:
        _service(client, grid)
        token = client.post(f"/v1/grids/{grid}/token").json()["token"]
        with FakeNode(master.url, token, "node-1", reporting=False) as node:
            wait_until(lambda: node.welcomes, 10, "the fake node to join")
            deployment = client.post(f"/v1/services/{grid}/null/web/deploy").json()["deployment"]
            wait_until(lambda: node.containers, 15, "the deployment to reach the node")
            looks: list[dict] = []
            reported: list[float] = []
            ended: list[float] = []

            def follow() -> None:
                with master.client() as other:
                    while True:
                        got = other.get(
                            f"/v1/deployments/{deployment}", params={"wait": 30}, timeout=60
                        ).json()
                        looks.append(got)
                        if got["state"] != "running":
                            ended.append(time.monotonic())
                            return

            follower = threading.Thread(target=follow)
            follower.start()
            wait_until(lambda: looks or follower.is_alive(), 5, "the follower to look")
            reported.append(time.monotonic())
            node.reporting.set()
            follower.join(timeout=40)
        assert looks and looks[-1]["state"] == "success", looks
        assert ended[0] - reported[0] < 10, "the end is answered when it comes, not at the wait's end"
        assert len(looks) <= 10, f"{len(looks)} looks: held between changes, not polled"
        began = time.monotonic()
        assert client.get(f"/v1/deployments/{deployment}", params={"wait": 30}).json()["state"] == "success"
        assert time.monotonic() - began < 5, "an ended deployment is answered at once"
        refused = client.get(f"/v1/deployments/{deployment}", params={"wait": 31})
        assert refused.status_code == 422, refused.text

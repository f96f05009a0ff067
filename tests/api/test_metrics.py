"""``GET /metrics`` on a real master: the Prometheus text format as prometheus_client parses it,
figures that follow real changes (agents on the real socket, a real deployment), and the token."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.fake_agent import FakeNode, hello, join
from tests.support.processes import MasterProcess, free_port, stop_process
from tests.support.waiting import wait_until

FAMILIES = {
    "moorage_nodes": "gauge",
    "moorage_instances": "gauge",
    "moorage_volume_instances": "gauge",
    "moorage_deployments": "gauge",
    "moorage_deployment_duration_seconds": "histogram",
    "moorage_agent_connections": "gauge",
    "moorage_api_request_duration_seconds": "histogram",
}


def _scrape(client: httpx.Client) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Sample name -> {sorted labels: value}, after checking the response is the text format."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.text):
        assert family.name.startswith("moorage_"), family.name
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def _value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get(name, {}).get(tuple(sorted(labels.items())))


def test_families_types_and_names(master: MasterProcess, grid: str) -> None:
    with master.client() as client:
        client.get(f"/v1/nodes/{grid}").raise_for_status()
        text = client.get("/metrics").text
    types = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert {name: types.get(name) for name in FAMILIES} == FAMILIES
    assert types["moorage_process_cpu_seconds"] == "counter"  # ProcessCollector, under moorage_
    with master.client() as client:
        samples = _scrape(client)
    for state in ("pending", "scheduled", "running", "unknown", "failed"):
        assert _value(samples, "moorage_instances", grid=grid, state=state) == 0
    for state in ("pending", "present", "missing", "error", "removing"):
        assert _value(samples, "moorage_volume_instances", grid=grid, state=state) == 0


def test_a_node_online_then_offline_is_counted(master: MasterProcess, grid: str) -> None:
    with master.client() as client:
        token = client.post(f"/v1/grids/{grid}/token").json()["token"]
        before = _scrape(client)
        assert _value(before, "moorage_nodes", grid=grid, state="online") == 0
        assert _value(before, "moorage_agent_connections", grid=grid) == 0
        ws, welcome = join(master.url, token, hello("node-1"))
        assert welcome["type"] == "welcome"
        try:
            online = _scrape(client)
            assert _value(online, "moorage_nodes", grid=grid, state="online") == 1
            assert _value(online, "moorage_nodes", grid=grid, state="offline") == 0
            assert _value(online, "moorage_agent_connections", grid=grid) == 1
        finally:
            ws.close()
        wait_until(
            lambda: _value(_scrape(client), "moorage_nodes", grid=grid, state="offline") == 1,
            10,
            "the closed node counted offline",
        )
        after = _scrape(client)
        assert _value(after, "moorage_nodes", grid=grid, state="online") == 0
        assert _value(after, "moorage_agent_connections", grid=grid) == 0


def test_a_deployment_counts_its_instances_volumes_and_duration(master: MasterProcess, grid: str) -> None:
    stack = {
        "stack": "shop",
        "services": {"db": {"image": "postgres:local", "instances": 2, "volumes": ["data:/data"]}},
        "volumes": {"data": {"external": {"name": "shop-data"}}},
    }
    with master.client() as client:
        token = client.post(f"/v1/grids/{grid}/token").json()["token"]
        client.post(
            f"/v1/volumes/{grid}", json={"name": "shop-data", "scope": "instance", "driver": "local"}
        ).raise_for_status()
        with FakeNode(master.url, token, "node-1", report_volumes=True) as node:
            wait_until(lambda: node.welcomes, 10, "the fake node to join")
            deployment = client.post(f"/v1/stacks/{grid}", json={"stack": stack}).json()["deployment"]
            wait_until(
                lambda: client.get(f"/v1/deployments/{deployment}").json()["state"] == "success",
                15,
                "the deployment to succeed",
            )
            wait_until(
                lambda: _value(_scrape(client), "moorage_volume_instances", grid=grid, state="present") == 2,
                10,
                "both volume instances present",
            )
            samples = _scrape(client)
            assert _value(samples, "moorage_instances", grid=grid, state="running") == 2
            assert _value(samples, "moorage_deployments", grid=grid, state="success") == 1
            assert _value(samples, "moorage_deployments", grid=grid, state="running") == 0
            count = _value(samples, "moorage_deployment_duration_seconds_count", grid=grid, state="success")
            assert count == 1
            inf = _value(
                samples, "moorage_deployment_duration_seconds_bucket", grid=grid, state="success", le="+Inf"
            )
            assert inf == 1
            assert (
                _value(
                    samples,
                    "moorage_deployment_duration_seconds_bucket",
                    grid=grid,
                    state="success",
                    le="60.0",
                )
                == 1
            )
            total = _value(samples, "moorage_deployment_duration_seconds_sum", grid=grid, state="success")
            assert total is not None and 0 <= total < 15
        # the node went away: its instances' data is there (instance scope, local), so they wait
        # for it, pending with that reason (node loss, issue 14), not run elsewhere
        wait_until(
            lambda: _value(_scrape(client), "moorage_instances", grid=grid, state="pending") == 2,
            10,
            "the instances of the offline node counted pending",
        )
        assert (_value(_scrape(client), "moorage_instances", grid=grid, state="running") or 0) == 0


def test_request_latency_by_route_template(master: MasterProcess, grid: str) -> None:
    with master.client() as client:
        key = {"method": "GET", "route": "/v1/nodes/{grid}", "status": "200"}
        before = _value(_scrape(client), "moorage_api_request_duration_seconds_count", **key) or 0
        for _ in range(3):
            client.get(f"/v1/nodes/{grid}").raise_for_status()
        assert client.get("/v1/nodes/no-such-grid").status_code == 404
        samples = _scrape(client)
        assert _value(samples, "moorage_api_request_duration_seconds_count", **key) == before + 3
        missing = {"method": "GET", "route": "/v1/nodes/{grid}", "status": "404"}
        assert (_value(samples, "moorage_api_request_duration_seconds_count", **missing) or 0) >= 1
        # raw paths never become labels: a series per grid name would be unbounded
        routes = {dict(k)["route"] for k in samples["moorage_api_request_duration_seconds_count"]}
        assert not any(grid in route for route in routes)


def test_metrics_need_an_admin_token(master: MasterProcess, grid: str) -> None:
    with master.client(token=None) as anonymous:
        refused = anonymous.get("/metrics")
        assert refused.status_code == 401
        assert "Authorization: Bearer" in refused.json()["error"]
    with master.client() as client:
        join_token = client.post(f"/v1/grids/{grid}/token").json()["token"]
    with master.client(token=join_token) as agent:
        assert agent.get("/metrics").status_code == 403
    with master.client(token="wrong") as stranger:
        assert stranger.get("/metrics").status_code == 401


def test_metrics_without_token_when_the_master_is_told_so(tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "master.log").open("wb")
    command = [sys.executable, "-m", "moorage", "master", "--listen", f"127.0.0.1:{port}"]
    command += ["--data-dir", str(tmp_path / "master"), "--metrics-without-token"]
    proc = subprocess.Popen(
        command,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: httpx.get(f"{url}/v1/ping", timeout=1).status_code == 200, 30, "the master")
        response = httpx.get(f"{url}/metrics", timeout=5)
        assert response.status_code == 200
        assert "moorage_nodes" in response.text
        assert httpx.get(f"{url}/v1/grids", timeout=5).status_code == 401  # only /metrics is open
    finally:
        stop_process(proc)
        log.close()

"""The volumes API (Kontena's contract): shapes, status codes and messages, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.support.processes import MasterProcess

SEED = {
    "stack": "redis",
    "services": {
        "redis": {
            "image": "redis:local",
            "command": "redis-server --appendonly yes",
            "volumes": ["redis-data:/data"],
        }
    },
    "volumes": {"redis-data": {"external": True}},
}


def test_create_list_show_delete(master: MasterProcess, grid: str) -> None:
    with master.client() as client:
        created = client.post(
            f"/v1/volumes/{grid}", json={"name": "redis-data", "scope": "instance", "driver": "local"}
        )
        assert created.status_code == 201
        body = created.json()
        assert body["id"] == f"{grid}/redis-data"
        assert body["driver_opts"] == {}
        assert body["instances"] == [] and body["services"] == []
        assert set(body) == {
            "id",
            "name",
            "scope",
            "driver",
            "topology",
            "on_node_lost",
            "driver_opts",
            "labels",
            "created_at",
            "updated_at",
            "stack",
            "instances",
            "services",
        }
        assert body["topology"] == "node", "the default for Docker's built-in local driver"
        assert body["on_node_lost"] == "wait", "the default: an instance waits for its lost node"
        listed = client.get(f"/v1/volumes/{grid}").json()
        assert [v["name"] for v in listed["volumes"]] == ["redis-data"]
        assert client.get(f"/v1/volumes/{grid}/redis-data").json()["scope"] == "instance"
        assert client.delete(f"/v1/volumes/{grid}/redis-data").status_code == 200
        assert client.get(f"/v1/volumes/{grid}/redis-data").status_code == 404


def test_driver_opts_keep_dots_and_equals(master: MasterProcess, grid: str) -> None:
    opts = {"o": "addr=1.2.3.4,rw", "com.example.size": "10g"}
    with master.client() as client:
        created = client.post(
            f"/v1/volumes/{grid}",
            json={"name": "nfs", "scope": "grid", "driver": "local", "driver_opts": opts},
        )
        assert created.json()["driver_opts"] == opts


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        (
            {"name": "x", "scope": "instance", "driver": "local"},
            {
                "name": "Volume name 'x' is not valid: use at least two characters, letters, digits, '_' or '-', starting with a letter or digit"
            },
        ),
        (
            {"name": "a.b", "scope": "instance", "driver": "local"},
            {
                "name": "Volume name 'a.b' is not valid: use at least two characters, letters, digits, '_' or '-', starting with a letter or digit"
            },
        ),
        (
            {"name": "vol", "scope": "x", "driver": "local"},
            {"scope": "Unknown scope 'x', must be one of grid, stack, instance"},
        ),
        (
            {"name": "vol", "scope": "grid", "driver": "rexray:latest"},
            {"driver": "Driver 'rexray:latest' must not have a tag: use the driver's name without ':latest'"},
        ),
        (
            {"name": "vol", "scope": "grid", "driver": ""},
            {"driver": "Driver is required: name the volume driver, e.g. local"},
        ),
        ({"name": "vol", "scope": "grid"}, {"driver": "is required"}),
        ({"scope": "grid", "driver": "local"}, {"name": "is required"}),
    ],
    ids=[
        "short-name",
        "dotted-name",
        "unknown-scope",
        "driver-tag",
        "empty-driver",
        "missing-driver",
        "missing-name",
    ],
)
def test_invalid_volume_is_422_and_creates_nothing(
    master: MasterProcess, grid: str, body: dict, errors: dict
) -> None:
    with master.client() as client:
        response = client.post(f"/v1/volumes/{grid}", json=body)
        assert response.status_code == 422
        assert response.json() == {"error": errors}
        assert client.get(f"/v1/volumes/{grid}").json() == {"volumes": []}


def test_duplicate_name(master: MasterProcess, grid: str) -> None:
    with master.client() as client:
        body = {"name": "dup", "scope": "grid", "driver": "local"}
        assert client.post(f"/v1/volumes/{grid}", json=body).status_code == 201
        again = client.post(f"/v1/volumes/{grid}", json=body)
        assert again.status_code == 422
        assert again.json() == {"error": {"name": "Volume with given name already exists"}}


def test_not_found(master: MasterProcess, grid: str) -> None:
    with master.client() as client:
        for method in ("GET", "DELETE"):
            response = client.request(method, f"/v1/volumes/{grid}/nosuch")
            assert response.status_code == 404
            assert response.json() == {"error": "Volume nosuch not found"}


def test_stack_with_missing_external_volume_creates_nothing(master: MasterProcess, grid: str) -> None:
    with master.client() as client:
        response = client.post(f"/v1/stacks/{grid}", json={"stack": SEED, "source": "", "deploy": False})
        assert response.status_code == 422
        message = response.json()["error"]["volumes.redis-data.external"]
        assert message.startswith("External volume redis-data not found")
        assert client.get(f"/v1/stacks/{grid}").json() == {"stacks": []}
        assert client.get(f"/v1/services/{grid}").json() == {"services": []}


def test_service_with_missing_volume_is_refused_not_anonymous(master: MasterProcess, grid: str) -> None:
    with master.client() as client:
        response = client.post(
            f"/v1/services/{grid}",
            json={"name": "redis", "image": "redis:local", "volumes": ["nosuch:/data"]},
        )
        assert response.status_code == 422
        assert response.json()["error"]["volumes[0]"].startswith("External volume nosuch not found")
        assert client.get(f"/v1/services/{grid}").json() == {"services": []}


def test_volume_in_use_cannot_be_removed_until_its_services_are_gone(
    master: MasterProcess, grid: str
) -> None:
    with master.client() as client:
        client.post(
            f"/v1/volumes/{grid}", json={"name": "redis-data", "scope": "instance", "driver": "local"}
        ).raise_for_status()
        client.post(f"/v1/stacks/{grid}", json={"stack": SEED, "deploy": False}).raise_for_status()
        client.post(
            f"/v1/services/{grid}",
            json={"name": "solo", "image": "redis:local", "volumes": ["redis-data:/data"]},
        ).raise_for_status()
        shown = client.get(f"/v1/volumes/{grid}/redis-data").json()
        assert shown["services"] == [{"id": f"{grid}/null/solo"}, {"id": f"{grid}/redis/redis"}]
        refused = client.delete(f"/v1/volumes/{grid}/redis-data")
        assert refused.status_code == 422
        message = refused.json()["error"]["name"]
        assert (
            "still in use" in message and f"{grid}/redis/redis" in message and f"{grid}/null/solo" in message
        )
        assert client.delete(f"/v1/stacks/{grid}/redis").status_code == 200
        assert client.delete(f"/v1/services/{grid}/null/solo").status_code == 200
        assert client.delete(f"/v1/volumes/{grid}/redis-data").status_code == 200


def test_stack_revisions_and_validation(master: MasterProcess, grid: str) -> None:
    with master.client() as client:
        client.post(
            f"/v1/volumes/{grid}", json={"name": "redis-data", "scope": "instance", "driver": "local"}
        ).raise_for_status()
        assert client.post(f"/v1/stacks/{grid}", json={"stack": SEED, "deploy": False}).status_code == 201
        again = client.post(f"/v1/stacks/{grid}", json={"stack": SEED, "deploy": False})
        assert again.status_code == 422 and "already exists" in again.json()["error"]["name"]
        changed = {**SEED, "services": {"redis": {**SEED["services"]["redis"], "command": "redis-server"}}}
        assert (
            client.put(f"/v1/stacks/{grid}/redis", json={"stack": changed, "deploy": False}).status_code
            == 200
        )
        stack = client.get(f"/v1/stacks/{grid}/redis").json()
        assert stack["revision"] == 2
        assert stack["services"][0]["command"] == "redis-server"
        broken = {**SEED, "services": {"redis": {"image": "redis:local", "volumes": ["redis-data:data"]}}}
        bad = client.put(f"/v1/stacks/{grid}/redis", json={"stack": broken, "deploy": False})
        assert bad.status_code == 422
        assert bad.json()["error"] == {
            "services.redis.volumes[0]": "volume definition not in right format: redis-data:data"
        }
        assert client.get(f"/v1/stacks/{grid}/redis").json()["revision"] == 2, (
            "a failed upgrade stores no revision"
        )


def test_a_node_holding_volume_instances_cannot_be_removed(master: MasterProcess, grid: str) -> None:
    from tests.support.fake_agent import hello, join
    from tests.support.waiting import wait_until

    with master.client() as client:
        token = client.post(f"/v1/grids/{grid}/token").json()["token"]
        ws, _ = join(master.url, token, hello("keeper"))
        client.post(
            f"/v1/volumes/{grid}", json={"name": "kept", "scope": "instance", "driver": "local"}
        ).raise_for_status()
        client.post(
            f"/v1/services/{grid}", json={"name": "db", "image": "redis:local", "volumes": ["kept:/data"]}
        ).raise_for_status()
        deployed = client.post(f"/v1/services/{grid}/null/db/deploy")
        assert deployed.status_code == 200
        wait_until(
            lambda: client.get(f"/v1/volumes/{grid}/kept").json()["instances"],
            10,
            "the volume instance recorded",
        )
        ws.close()
        wait_until(
            lambda: client.get(f"/v1/nodes/{grid}/keeper").json()["status"] == "offline", 10, "node offline"
        )
        refused = client.delete(f"/v1/nodes/{grid}/keeper")
        assert refused.status_code == 409
        assert "holds volume instances (db.kept-1)" in refused.json()["error"]
        assert client.get(f"/v1/nodes/{grid}/keeper").status_code == 200

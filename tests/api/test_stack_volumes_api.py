"""Volumes declared in stack files, through the API of a real master (SQLite and PostgreSQL):
install creates the stack's own volumes as ``<stack>_<alias>`` owned by it (so one file installs
under two names), refuses a same-named volume the stack does not own (409) and an external volume
that is not what the stack expects (422), storing nothing either way; an upgrade refuses a new
scope or driver (409, nothing stored), applies labels and records driver_opts; ``stack rm`` keeps
the volumes (still owned, reused by the next install), ``?volumes=true`` removes only the stack's
own; ``volume prune`` checks what it is given."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from moorage.stackfile import load_stack, stack_to_dict
from tests.support.processes import MasterProcess

FILE = """
stack: redis
services:
  redis:
    image: redis:7-alpine
    volumes: [data:/data, cache:/cache]
volumes:
  data: {scope: instance, driver: local, labels: {team: db}, driver_opts: {type: tmpfs, device: tmpfs}}
  cache: {external: {name: cache, scope: grid, driver: local}}
"""


def document(text: str = FILE, **variables: str) -> dict[str, Any]:
    return stack_to_dict(load_stack(text, env=variables, grid="any"))


def install(client: httpx.Client, grid: str, name: str, text: str = FILE) -> httpx.Response:
    return client.post(f"/v1/stacks/{grid}", json={"stack": document(text), "name": name, "deploy": False})


def volumes(client: httpx.Client, grid: str) -> dict[str, dict[str, Any]]:
    response = client.get(f"/v1/volumes/{grid}")
    assert response.status_code == 200, response.text
    return {v["name"]: v for v in response.json()["volumes"]}


def stacks(client: httpx.Client, grid: str) -> list[str]:
    return [s["name"] for s in client.get(f"/v1/stacks/{grid}").json()["stacks"]]


def services(client: httpx.Client, grid: str) -> list[str]:
    return [s["id"] for s in client.get(f"/v1/services/{grid}").json()["services"]]


@pytest.fixture
def cache(master: MasterProcess, grid: str) -> None:
    with master.client() as client:
        body = {"name": "cache", "scope": "grid", "driver": "local"}
        assert client.post(f"/v1/volumes/{grid}", json=body).status_code == 201


@pytest.mark.usefixtures("cache")
def test_one_file_installs_twice_with_a_volume_of_its_own_each(master: MasterProcess, grid: str) -> None:
    with master.client() as client:
        assert install(client, grid, "a").status_code == 201, install
        assert install(client, grid, "b").status_code == 201
        found = volumes(client, grid)
        assert sorted(found) == ["a_data", "b_data", "cache"]
        assert found["cache"]["stack"] is None
        for name in ("a", "b"):
            volume = found[f"{name}_data"]
            assert volume["stack"] == f"{grid}/{name}"
            assert (volume["scope"], volume["driver"], volume["topology"]) == ("instance", "local", "node")
            assert volume["labels"] == {"team": "db"}
            assert volume["driver_opts"] == {"type": "tmpfs", "device": "tmpfs"}
            assert volume["services"] == [{"id": f"{grid}/{name}/redis"}]
        assert found["cache"]["services"] == [{"id": f"{grid}/a/redis"}, {"id": f"{grid}/b/redis"}]
        shown = client.get(f"/v1/volumes/{grid}/a_data").json()
        assert shown.pop("retired") == []  # only a volume's own page lists retired copies (volume moves)
        assert shown.pop("stale") == [] and shown.pop("restored") == []  # and those of lost nodes
        assert shown == found["a_data"]
        # a stack's volume is in use while its services mount it, as any volume is
        refused = client.delete(f"/v1/volumes/{grid}/a_data")
        assert refused.status_code == 422 and "still in use" in refused.text


def test_a_same_named_volume_the_stack_does_not_own_fails_the_install(
    master: MasterProcess, grid: str, cache: None
) -> None:
    with master.client() as client:
        body = {"name": "c_data", "scope": "instance", "driver": "local"}
        assert client.post(f"/v1/volumes/{grid}", json=body).status_code == 201
        before = volumes(client, grid)
        response = install(client, grid, "c")
        assert response.status_code == 409, response.text
        assert response.json() == {
            "error": "Volume c_data already exists and is not stack c's (made with 'moorage volume create'); "
            "install the stack under another name (--name), or declare 'data' as external: {name: c_data} "
            "to use that volume"
        }
        assert stacks(client, grid) == [] and services(client, grid) == []
        assert volumes(client, grid) == before


@pytest.mark.usefixtures("cache")
def test_an_external_volume_that_is_not_what_the_stack_expects_fails_the_install(
    master: MasterProcess, grid: str
) -> None:
    text = FILE.replace(
        "{name: cache, scope: grid, driver: local}", "{name: cache, scope: instance, driver: nfs}"
    )
    with master.client() as client:
        before = volumes(client, grid)
        response = install(client, grid, "d", text)
        assert response.status_code == 422, response.text
        assert response.json() == {
            "error": {
                "volumes.cache.external.scope": "External volume cache has scope grid, but this stack expects "
                "scope instance; use a volume with scope instance, or change the stack file",
                "volumes.cache.external.driver": "External volume cache has driver local, but this stack "
                "expects driver nfs; use a volume with driver nfs, or change the stack file",
            }
        }
        assert stacks(client, grid) == [] and services(client, grid) == []
        assert volumes(client, grid) == before  # not even the stack's own volume


def test_an_external_volume_that_does_not_exist_fails_as_in_kontena(master: MasterProcess, grid: str) -> None:
    with master.client() as client:
        response = install(client, grid, "e")
        assert response.status_code == 422
        assert response.json()["error"]["volumes.cache.external"].startswith(
            "External volume cache not found"
        )
        assert stacks(client, grid) == [] and volumes(client, grid) == {}


@pytest.mark.usefixtures("cache")
def test_an_upgrade_refuses_a_new_scope_or_driver_and_applies_labels_and_options(
    master: MasterProcess, grid: str
) -> None:
    with master.client() as client:
        assert install(client, grid, "a").status_code == 201
        before = volumes(client, grid)
        revision = client.get(f"/v1/stacks/{grid}/a").json()["revision"]
        for changed, field, old, new in (
            ("scope: instance, driver: local", "scope", "instance", "stack"),
            ("scope: instance, driver: local", "driver", "local", "dirvol"),
        ):
            text = FILE.replace(changed, changed.replace(f"{field}: {old}", f"{field}: {new}"))
            response = client.put(f"/v1/stacks/{grid}/a", json={"stack": document(text), "deploy": False})
            assert response.status_code == 409, response.text
            message = response.json()["error"]
            assert message.startswith(
                f"Volume a_data of stack a has {field} {old}; the stack file says {new}, and its Docker "
                f"volumes hold data made for {field} {old}"
            )
            assert f"Keep {field}: {old}, or declare a volume under a new name" in message
            assert volumes(client, grid) == before
            assert client.get(f"/v1/stacks/{grid}/a").json()["revision"] == revision
        text = FILE.replace("labels: {team: db}", "labels: {team: ops}").replace(
            "type: tmpfs,", "type: tmpfs, o: size=1m,"
        )
        response = client.put(f"/v1/stacks/{grid}/a", json={"stack": document(text), "deploy": False})
        assert response.status_code == 200, response.text
        after = volumes(client, grid)["a_data"]
        assert after["labels"] == {"team": "ops"}
        assert after["driver_opts"] == {"type": "tmpfs", "o": "size=1m", "device": "tmpfs"}
        assert after["created_at"] == before["a_data"]["created_at"]


@pytest.mark.usefixtures("cache")
def test_stack_rm_keeps_the_stacks_volumes_and_with_volumes_removes_only_its_own(
    master: MasterProcess, grid: str
) -> None:
    with master.client() as client:
        assert install(client, grid, "a").status_code == 201
        assert install(client, grid, "b").status_code == 201
        created = volumes(client, grid)["a_data"]["created_at"]
        assert client.delete(f"/v1/stacks/{grid}/a").status_code == 200
        kept = volumes(client, grid)
        assert sorted(kept) == ["a_data", "b_data", "cache"] and kept["a_data"]["stack"] == f"{grid}/a"
        assert kept["a_data"]["services"] == []
        assert install(client, grid, "a").status_code == 201  # reuses its volume
        assert volumes(client, grid)["a_data"]["created_at"] == created
        response = client.delete(f"/v1/stacks/{grid}/a", params={"volumes": "true"})
        assert response.status_code == 200, response.text
        assert sorted(volumes(client, grid)) == ["b_data", "cache"]
        assert stacks(client, grid) == ["b"]
        said = client.get(f"/v1/grids/{grid}/events", params={"volume": "a_data"}).json()["events"]
        assert [(e["kind"], e["stack"]) for e in said if e["kind"].startswith("volume.")] == [
            ("volume.created", "a"),
            ("volume.removed", "a"),
        ], "created once (the second install reused it), removed with the stack"
        # a stack removed before: its volumes, kept then, can still go with it
        assert client.delete(f"/v1/stacks/{grid}/b").status_code == 200
        assert client.delete(f"/v1/stacks/{grid}/b", params={"volumes": "true"}).status_code == 200
        assert sorted(volumes(client, grid)) == ["cache"]
        gone = client.delete(f"/v1/stacks/{grid}/b", params={"volumes": "true"})
        assert gone.status_code == 404 and "Stack b not found" in gone.text


def test_prune_checks_what_it_is_given(master: MasterProcess, grid: str) -> None:
    with master.client() as client:
        assert client.post(f"/v1/volumes/{grid}/unused/prune", json={}).json() == {
            "dry_run": False,
            "pruned": [],
        }
        missing = client.post(f"/v1/volumes/{grid}/unused/prune", json={"volume": "nope"})
        assert missing.status_code == 404 and missing.json() == {"error": "Volume nope not found"}
        for body in (
            {"older_than": -1},
            {"older_than": 1e300},
            {"volume": "a/b"},
            {"dry_run": "maybe"},
            {"dry_run": 0},
            {"older_than": "7"},
            {"x": 1},
        ):
            response = client.post(f"/v1/volumes/{grid}/unused/prune", json=body)
            assert response.status_code == 422, (body, response.text)
        assert client.post("/v1/volumes/no-such-grid/unused/prune", json={}).status_code == 404


BACKED_UP = FILE.replace(
    "labels: {team: db},", "labels: {team: db}, backup: {schedule: '0 3 * * *', keep: {daily: 7, weekly: 4}},"
)


@pytest.mark.usefixtures("cache")
def test_a_stack_volume_is_backed_up_as_its_file_says_through_upgrades(
    master: MasterProcess, grid: str
) -> None:
    """``backup:`` in the file is the volume's schedule and retention, as ``volume update
    --backup-*`` sets them: set at install, changed by an upgrade, ended when the file drops it."""

    def schedule() -> tuple[str | None, str | None]:
        shown = client.get(f"/v1/volume-backups/{grid}/a_data")
        assert shown.status_code == 200, shown.text
        return shown.json()["schedule"], shown.json()["keep"]

    with master.client() as client:
        assert install(client, grid, "a", BACKED_UP).status_code == 201
        assert schedule() == ("0 3 * * *", "daily=7,weekly=4")
        assert client.get(f"/v1/volume-backups/{grid}/cache").json()["schedule"] is None, (
            "external: untouched"
        )
        hourly = BACKED_UP.replace("0 3 * * *", "0 * * * *").replace("{daily: 7, weekly: 4}", "last=24")
        response = client.put(f"/v1/stacks/{grid}/a", json={"stack": document(hourly), "deploy": False})
        assert response.status_code == 200, response.text
        assert schedule() == ("0 * * * *", "last=24")
        revision = client.get(f"/v1/stacks/{grid}/a").json()["revision"]
        # a document that was not read from a file is checked as one: nothing stored
        bad = document(hourly)
        bad["volumes"]["data"]["backup"]["schedule"] = "hourly"
        refused = client.put(f"/v1/stacks/{grid}/a", json={"stack": bad, "deploy": False})
        assert refused.status_code == 422, refused.text
        assert "volumes.data.backup.schedule" in str(refused.json()["error"])
        assert (schedule(), client.get(f"/v1/stacks/{grid}/a").json()["revision"]) == (
            ("0 * * * *", "last=24"),
            revision,
        )
        response = client.put(f"/v1/stacks/{grid}/a", json={"stack": document(FILE), "deploy": False})
        assert response.status_code == 200, response.text
        assert schedule() == (None, None)


@pytest.mark.usefixtures("cache")
def test_a_stack_volume_has_the_node_loss_policy_its_file_gives(master: MasterProcess, grid: str) -> None:
    """``on_node_lost:`` as ``volume create --on-node-lost``: set at install, changed by an upgrade
    (it changes no data), back to wait when the file drops it; a wrong one stores nothing."""

    def policy() -> str:
        return str(volumes(client, grid)["a_data"]["on_node_lost"])

    with master.client() as client:
        text = FILE.replace("labels: {team: db},", "labels: {team: db}, on_node_lost: restore,")
        assert install(client, grid, "a", text).status_code == 201
        assert policy() == "restore"
        again = client.put(
            f"/v1/stacks/{grid}/a",
            json={"stack": document(text.replace("restore", "recreate")), "deploy": False},
        )
        assert again.status_code == 200, again.text
        assert policy() == "recreate"
        bad = document(text)
        bad["volumes"]["data"]["on_node_lost"] = "forget"
        refused = client.put(f"/v1/stacks/{grid}/a", json={"stack": bad, "deploy": False})
        assert refused.status_code == 422 and "volumes.data.on_node_lost" in str(refused.json()["error"])
        assert policy() == "recreate"
        plain = client.put(f"/v1/stacks/{grid}/a", json={"stack": document(FILE), "deploy": False})
        assert plain.status_code == 200, plain.text
        assert policy() == "wait"

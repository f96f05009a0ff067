"""Bad input against the real master: a clear 4xx in the project's shape, never a 5xx, nothing stored.

Each class of bad input is tried on every route it can reach (names in bodies and in paths, a lone
surrogate in every string field of every write, bodies that are not JSON, too large or too slow),
and each test then reads back what a user would check: the lists still work and hold nothing new.
"""

from __future__ import annotations

import concurrent.futures
import json
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from moorage.master.http_protocol import HEADER_TIMEOUT
from moorage.master.request_limits import MAX_BODY_BYTES
from moorage.model.quoting import CONTROL_RE
from moorage.stackfile.validate import MAX_SERVICES
from tests.support.processes import MasterProcess

STACK = {"stack": "web", "services": {"web": {"image": "busybox:local"}}}

BAD_NAMES = [
    pytest.param("../x", id="dot-dot-slash"),
    pytest.param("a/b", id="slash"),
    pytest.param("", id="empty"),
    pytest.param("-web", id="leading-dash"),
    pytest.param("a" * 100_000, id="100k-long"),
    pytest.param("ab\ncd", id="newline"),
    pytest.param("ab\x00", id="nul"),
    pytest.param("ab\x1b[31m", id="terminal-escape"),
    pytest.param("caf\u00e9", id="non-ascii"),
]


def _post_json(client: httpx.Client, path: str, body: object) -> httpx.Response:
    """``body`` as JSON text, escapes and all (httpx would refuse to encode a lone surrogate)."""
    return client.post(path, content=json.dumps(body), headers={"content-type": "application/json"})


def _assert_error_shape(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"], str | dict)
    if isinstance(body["error"], dict):
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in body["error"].items())
    texts = [body["error"]] if isinstance(body["error"], str) else [*body["error"], *body["error"].values()]
    for text in texts:  # what it quotes of the input is cut short, control characters escaped
        assert CONTROL_RE.search(text) is None, f"a control character in the answer: {text!r}"
        assert len(text) <= 1000, f"an answer of {len(text)} characters: {text[:200]!r}…"
    return body


def _nothing_stored(client: httpx.Client, grid: str) -> None:
    for path, key in [
        (f"/v1/stacks/{grid}", "stacks"),
        (f"/v1/services/{grid}", "services"),
        (f"/v1/volumes/{grid}", "volumes"),
    ]:
        response = client.get(path)
        assert response.status_code == 200, (path, response.text)
        assert response.json()[key] == [], path


@pytest.mark.parametrize("name", BAD_NAMES)
def test_an_invalid_stack_name_override_is_422_and_stores_nothing(
    master: MasterProcess, grid: str, name: str
) -> None:
    with master.client() as client:
        response = _post_json(client, f"/v1/stacks/{grid}", {"stack": STACK, "name": name, "deploy": False})
        body = _assert_error_shape(response, 422)
        assert set(body["error"]) == {"name"}
        assert name[:100] not in body["error"]["name"] or len(name) < 80, "a long name is not echoed"
        _nothing_stored(client, grid)
        ok = client.post(f"/v1/stacks/{grid}", json={"stack": STACK, "name": "web-2", "deploy": False})
        assert ok.status_code == 201, ok.text
        assert [s["name"] for s in client.get(f"/v1/stacks/{grid}").json()["stacks"]] == ["web-2"]
        assert client.delete(f"/v1/stacks/{grid}/web-2").status_code == 200


def test_the_null_stack_name_is_refused_as_an_override(master: MasterProcess, grid: str) -> None:
    with master.client() as client:
        response = client.post(f"/v1/stacks/{grid}", json={"stack": STACK, "name": "null", "deploy": False})
        assert _assert_error_shape(response, 422)["error"] == {
            "name": "'null' is reserved for services created outside a stack; choose another stack name"
        }
        _nothing_stored(client, grid)


def _name_bodies(grid: str, name: str) -> list[tuple[str, dict[str, Any]]]:
    bodies = [
        ("/v1/grids", {"name": name}),
        (f"/v1/volumes/{grid}", {"name": name, "scope": "grid", "driver": "local"}),
        (f"/v1/services/{grid}", {"name": name, "image": "busybox:local"}),
        (f"/v1/stacks/{grid}", {"stack": {**STACK, "services": {name: {"image": "busybox:local"}}}}),
    ]
    if "/" not in name:  # in a stack file, stack: OWNER/NAME is valid
        bodies.append((f"/v1/stacks/{grid}", {"stack": {**STACK, "stack": name}, "deploy": False}))
    return bodies


@pytest.mark.parametrize("name", BAD_NAMES)
def test_invalid_names_in_bodies_are_422_and_store_nothing(
    master: MasterProcess, grid: str, name: str
) -> None:
    with master.client() as client:
        grids_before = client.get("/v1/grids").json()["grids"]
        for path, body in _name_bodies(grid, name):
            _assert_error_shape(_post_json(client, path, body), 422)
        _nothing_stored(client, grid)
        assert client.get("/v1/grids").json()["grids"] == grids_before


def _paths(grid: str, name: str) -> list[tuple[str, str]]:
    n = quote(name, safe="")
    return [
        ("GET", f"/v1/grids/{n}"),
        ("DELETE", f"/v1/grids/{n}"),
        ("GET", f"/v1/volumes/{grid}/{n}"),
        ("DELETE", f"/v1/volumes/{grid}/{n}"),
        ("GET", f"/v1/stacks/{grid}/{n}"),
        ("PUT", f"/v1/stacks/{grid}/{n}"),
        ("POST", f"/v1/stacks/{grid}/{n}/deploy"),
        ("GET", f"/v1/services/{grid}/null/{n}"),
        ("POST", f"/v1/services/{grid}/{n}/web/scale"),
        ("GET", f"/v1/nodes/{grid}/{n}"),
        ("DELETE", f"/v1/nodes/{grid}/{n}"),
        ("POST", f"/v1/nodes/{grid}/{n}/labels"),
        ("POST", f"/v1/nodes/{grid}/{n}/drain"),
        ("POST", f"/v1/nodes/{grid}/{n}/undrain"),
        ("GET", f"/v1/nodes/{n}"),
    ]


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("a" * 5000, id="5000-long"),
        pytest.param("ab\ncd", id="newline"),
        pytest.param("ab\x00", id="nul"),
        pytest.param("ab\x1b[31m", id="terminal-escape"),
        pytest.param("a b", id="space"),
    ],
)
def test_invalid_names_in_paths_are_422_naming_the_parameter(
    master: MasterProcess, grid: str, name: str
) -> None:
    bodies = {"PUT": {"stack": STACK}, "POST": None}
    with master.client() as client:
        for method, path in _paths(grid, name):
            body: Any = bodies.get(method)
            if path.endswith("/labels"):
                body = {"labels": ["zone=a"]}
            elif path.endswith("/scale"):
                body = {"instances": 1}
            response = client.request(method, path, json=body)
            error = _assert_error_shape(response, 422)["error"]
            assert isinstance(error, dict) and len(error) == 1, (method, path, error)
        _nothing_stored(client, grid)


@pytest.mark.parametrize(
    "character",
    [pytest.param("\x00", id="nul"), pytest.param("\x1b", id="escape"), pytest.param("\x0c", id="form-feed")],
)
def test_a_stack_source_with_a_character_yaml_refuses_is_422_and_stores_nothing(
    master: MasterProcess, grid: str, character: str
) -> None:
    """The text kept with a revision is what a stack file can hold (PostgreSQL holds no NUL)."""
    source = f"stack: web\nservices:\n  web: {{image: busy{character}box}}\n"
    code = f"U+{ord(character):04X}"
    with master.client() as client:
        install = client.post(f"/v1/stacks/{grid}", json={"stack": STACK, "source": source, "deploy": False})
        assert _assert_error_shape(install, 422)["error"] == {
            "source": f"holds the character {code} at line 3, column 20, which YAML does not allow in a "
            "file; send the stack file as it is written"
        }
        _nothing_stored(client, grid)
        written = "stack: web\r\nservices:\r\n\tweb: {image: busybox}  # tabs, CR LF, \u00e9\n"
        made = client.post(f"/v1/stacks/{grid}", json={"stack": STACK, "source": written, "deploy": False})
        assert made.status_code == 201, made.text
        upgrade = client.put(
            f"/v1/stacks/{grid}/web", json={"stack": STACK, "source": source, "deploy": False}
        )
        assert set(_assert_error_shape(upgrade, 422)["error"]) == {"source"}
        assert client.get(f"/v1/stacks/{grid}/web").json()["revision"] == 1, "no revision stored"
        assert client.delete(f"/v1/stacks/{grid}/web").status_code == 200


@pytest.mark.parametrize("flag", [True, False])
def test_a_boolean_is_no_instance_count(master: MasterProcess, grid: str, flag: bool) -> None:
    """JSON ``true``/``false`` are not 1/0 (found by Schemathesis: a scale to ``false`` was accepted)."""
    with master.client() as client:
        made = client.post(
            f"/v1/services/{grid}", json={"name": "web", "image": "busybox", "instances": flag}
        )
        error = _assert_error_shape(made, 422)["error"]
        assert set(error) == {"instances"}, error
        _nothing_stored(client, grid)
        assert (
            client.post(f"/v1/services/{grid}", json={"name": "web", "image": "busybox"}).status_code == 201
        )
        scaled = client.post(f"/v1/services/{grid}/null/web/scale", json={"instances": flag})
        assert set(_assert_error_shape(scaled, 422)["error"]) == {"instances"}
        (shown,) = client.get(f"/v1/services/{grid}").json()["services"]
        assert shown["instances"] == 1


def test_a_driver_name_longer_than_the_store_keeps_is_422(master: MasterProcess, grid: str) -> None:
    with master.client() as client:
        long = client.post(f"/v1/volumes/{grid}", json={"name": "v1", "scope": "grid", "driver": "d" * 256})
        assert _assert_error_shape(long, 422)["error"] == {
            "driver": f"Driver '{'d' * 80}…' is 256 characters long; use at most 255"
        }
        _nothing_stored(client, grid)
        made = client.post(f"/v1/volumes/{grid}", json={"name": "v1", "scope": "grid", "driver": "d" * 255})
        assert made.status_code == 201, made.text
        assert client.get(f"/v1/volumes/{grid}/v1").json()["driver"] == "d" * 255
        assert client.delete(f"/v1/volumes/{grid}/v1").status_code == 200


def _valid_writes(grid: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        ("POST", "/v1/grids", {"name": "g-surrogate"}),
        (
            "POST",
            f"/v1/volumes/{grid}",
            {
                "name": "vol-1",
                "scope": "grid",
                "driver": "local",
                "driver_opts": {"type": "tmpfs"},
                "labels": {"team": "a"},
            },
        ),
        (
            "POST",
            f"/v1/services/{grid}",
            {
                "name": "svc",
                "image": "busybox:local",
                "cmd": "sleep 1",
                "env": ["A=b"],
                "ports": ["8080:80"],
                "affinity": ["node==n1"],
                "strategy": "ha",
                "memory": "64m",
            },
        ),
        (
            "POST",
            f"/v1/stacks/{grid}",
            {
                "stack": {"stack": "web", "services": {"web": {"image": "busybox", "environment": ["A=b"]}}},
                "source": "stack: web",
                "name": "web",
                "deploy": False,
            },
        ),
        ("PUT", f"/v1/stacks/{grid}/web", {"stack": STACK, "source": "x", "deploy": False}),
    ]


def _string_leaves(value: object, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, str):
        yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield (*path, ("key", key))
            yield from _string_leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _string_leaves(item, (*path, index))


def _with_surrogate(value: Any, path: tuple[Any, ...]) -> Any:
    if not path:
        return value + "ab\ud800"
    head, rest = path[0], path[1:]
    if isinstance(head, tuple):  # a dict key
        return {(k + "\udfff" if k == head[1] else k): v for k, v in value.items()}
    copy = list(value) if isinstance(value, list) else dict(value)
    copy[head] = _with_surrogate(value[head], rest)
    return copy


def test_a_lone_surrogate_in_any_string_field_is_422_and_stores_nothing(
    master: MasterProcess, grid: str
) -> None:
    tried = 0
    with master.client() as client:
        grids_before = client.get("/v1/grids").json()["grids"]
        for method, path, body in _valid_writes(grid):
            for leaf in _string_leaves(body):
                sent = json.dumps(_with_surrogate(body, leaf))
                response = client.request(
                    method, path, content=sent, headers={"content-type": "application/json"}
                )
                error = _assert_error_shape(response, 422)["error"]
                assert any("lone surrogate" in message for message in error.values()), (path, leaf, error)
                tried += 1
        assert tried > 40
        _nothing_stored(client, grid)
        assert client.get("/v1/grids").json()["grids"] == grids_before


def test_non_utf8_bodies_are_400_and_raw_surrogate_bytes_422(master: MasterProcess) -> None:
    json_type = {"content-type": "application/json"}
    with master.client() as client:
        response = client.post("/v1/grids", content=b'{"name": "caf\xe9"}', headers=json_type)
        error = _assert_error_shape(response, 400)["error"]
        assert error.startswith("Malformed JSON body: the body is not UTF-8 text (byte 0xE9 at offset 13)")
        response = client.post("/v1/grids", content=b'{"name": "ab\xed\xa0\x80"}', headers=json_type)
        assert "lone surrogate" in _assert_error_shape(response, 422)["error"]["name"]
        assert client.get("/v1/grids/ab").status_code == 404


def test_parse_errors_use_the_project_shape(master: MasterProcess, grid: str) -> None:
    with master.client() as client:
        deep = "[" * 100_000 + "]" * 100_000
        response = client.post(
            f"/v1/volumes/{grid}", content=deep, headers={"content-type": "application/json"}
        )
        assert response.status_code in (400, 422), response.text
        _assert_error_shape(response, response.status_code)
        response = client.post(
            f"/v1/volumes/{grid}", content=b"name=x", headers={"content-type": "text/plain"}
        )
        assert _assert_error_shape(response, 415)["error"] == (
            "Send the body as JSON with 'Content-Type: application/json', not 'text/plain'"
        )
        response = client.post(
            f"/v1/volumes/{grid}", content=b"[1, 2]", headers={"content-type": "application/json"}
        )
        _assert_error_shape(response, 422)
        _nothing_stored(client, grid)


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/v1/grids", "GET, POST"),
        ("PATCH", "/v1/grids/{grid}", "GET, DELETE"),
        ("POST", "/v1/volumes/{grid}/vol", "GET, PATCH, DELETE"),
        ("GET", "/v1/stacks/{grid}/web/deploy", "POST"),
        ("DELETE", "/v1/services/{grid}", "GET, POST"),
    ],
    ids=["grids", "grid", "volume", "stack-deploy", "services"],
)
def test_wrong_method_is_405_with_the_allow_header_of_the_path(
    master: MasterProcess, grid: str, method: str, path: str, allow: str
) -> None:
    with master.client() as client:
        response = client.request(method, path.format(grid=grid))
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert _assert_error_shape(response, 405)["error"] == (
        f"Method {method} not allowed on this route; it takes {allow}"
    )


def test_concurrent_creates_of_one_name_give_one_201_and_conflicts(master: MasterProcess, grid: str) -> None:
    creates = [
        (
            f"/v1/volumes/{grid}",
            {"name": "same", "scope": "grid", "driver": "local"},
            f"/v1/volumes/{grid}",
            "volumes",
        ),
        (f"/v1/stacks/{grid}", {"stack": STACK, "deploy": False}, f"/v1/stacks/{grid}", "stacks"),
        (
            f"/v1/services/{grid}",
            {"name": "one", "image": "busybox:local"},
            f"/v1/services/{grid}",
            "services",
        ),
        ("/v1/grids", {"name": f"{grid}-twin"}, "/v1/grids", "grids"),
    ]
    for path, body, list_path, key in creates:

        def create(_: int, path: str = path, body: dict[str, Any] = body) -> httpx.Response:
            with master.client() as client:
                return client.post(path, json=body)

        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(create, range(20)))
        statuses = sorted(a.status_code for a in answers)
        assert statuses.count(201) == 1, (path, statuses)
        for answer in answers:
            if answer.status_code != 201:
                assert answer.status_code in (409, 422), (path, answer.status_code, answer.text)
                assert "already exists" in json.dumps(answer.json()["error"]), answer.text
        with master.client() as client:
            listed = client.get(list_path).json()[key]
        names = [item["name"] for item in listed]
        wanted = body.get("name") or STACK["stack"]
        assert names.count(wanted) == 1, (key, names)


def test_bodies_over_the_limit_are_413_and_unauthenticated_ones_401_before_reading(
    master: MasterProcess, grid: str
) -> None:
    big = b'{"name": "' + b"a" * (MAX_BODY_BYTES + 1) + b'"}'
    json_type = {"content-type": "application/json"}
    with master.client(None) as anonymous:
        response = anonymous.post(f"/v1/volumes/{grid}", content=big, headers=json_type)
        assert _assert_error_shape(response, 401)["error"].startswith("Missing bearer token")
    with master.client("not-a-token") as stranger:
        response = stranger.post(f"/v1/volumes/{grid}", content=big, headers=json_type)
        _assert_error_shape(response, 401)
    with master.client() as client:
        response = client.post(f"/v1/volumes/{grid}", content=big, headers=json_type)
        assert "larger than 8 MiB" in _assert_error_shape(response, 413)["error"]

        def chunks() -> Iterator[bytes]:
            yield b'{"name": "'
            for _ in range(MAX_BODY_BYTES // 65536 + 2):
                yield b"a" * 65536
            yield b'"}'

        response = client.post(f"/v1/volumes/{grid}", content=chunks(), headers=json_type)
        assert "larger than 8 MiB" in _assert_error_shape(response, 413)["error"]
        _nothing_stored(client, grid)
        assert client.get("/v1/ping").status_code == 200


def test_names_and_labels_have_length_limits(master: MasterProcess, grid: str) -> None:
    volume = {"scope": "grid", "driver": "local"}
    with master.client() as client:
        cases = [
            ({"name": "v" * 65, **volume}, "name", "is 65 characters long; use at most 64"),
            (
                {"name": "vol", **volume, "labels": {f"k{i}": "v" for i in range(65)}},
                "labels",
                "65 labels given",
            ),
            ({"name": "vol", **volume, "labels": {"k" * 129: "v"}}, "labels", "use at most 128"),
            ({"name": "vol", **volume, "labels": {"k": "v" * 1025}}, "labels", "use at most 1024"),
            ({"name": "vol", **volume, "labels": {"k": "a\x00b"}}, "labels", "control character U+0000"),
            ({"name": "vol", "scope": "grid", "driver": "lo\x00cal"}, "driver", "control character U+0000"),
        ]
        for body, field, message in cases:
            error = _assert_error_shape(client.post(f"/v1/volumes/{grid}", json=body), 422)["error"]
            assert field in error and message in error[field], (body.keys(), error)
        _nothing_stored(client, grid)


@pytest.mark.parametrize(
    ("field", "value", "where"),
    [
        ("image", "busybox\x00", "image"),
        ("image", "busy\nbox", "image"),
        ("env", ["A=b\x00c"], "env[0]"),
        ("env", ["A=\x1b]0;owned\x07"], "env[0]"),
        ("cmd", "sleep\x003600", "cmd"),
        ("cmd", "sh -c 'echo \x1b[2J'", "cmd"),
    ],
    ids=["image-nul", "image-newline", "env-nul", "env-escape", "cmd-nul", "cmd-escape"],
)
def test_images_env_entries_and_commands_refuse_control_characters(
    master: MasterProcess, grid: str, field: str, value: object, where: str
) -> None:
    with master.client() as client:
        body = {"name": "svc", "image": "busybox:local", field: value}
        error = _assert_error_shape(client.post(f"/v1/services/{grid}", json=body), 422)["error"]
        assert "control character" in error[where], error
        stack = {"stack": "web", "services": {"web": {"image": "busybox", "environment": ["A=b"]}}}
        stack["services"]["web"][{"env": "environment", "cmd": "command"}.get(field, field)] = value
        error = _assert_error_shape(client.post(f"/v1/stacks/{grid}", json={"stack": stack}), 422)["error"]
        assert any("control character" in message for message in error.values()), error
        _nothing_stored(client, grid)


def test_a_command_may_hold_tabs_and_line_breaks(master: MasterProcess, grid: str) -> None:
    script = "sh -c 'echo one\n\techo two\r\n'"
    with master.client() as client:
        created = client.post(
            f"/v1/services/{grid}", json={"name": "svc", "image": "busybox:local", "cmd": script}
        )
        assert created.status_code == 201, created.text
        assert created.json()["command"] == script
        stack = {"stack": "web", "services": {"web": {"image": "busybox", "command": script}}}
        installed = client.post(f"/v1/stacks/{grid}", json={"stack": stack, "deploy": False})
        assert installed.status_code == 201, installed.text


def test_a_stack_with_too_many_services_is_refused_with_the_limit(master: MasterProcess, grid: str) -> None:
    services = {f"s{i}": {"image": "busybox"} for i in range(MAX_SERVICES + 1)}
    with master.client() as client:
        response = client.post(f"/v1/stacks/{grid}", json={"stack": {"stack": "big", "services": services}})
        error = _assert_error_shape(response, 422)["error"]
        assert error == {
            "services": f"defines {MAX_SERVICES + 1} services; a stack may define at most {MAX_SERVICES}: "
            "split it into several stacks"
        }
        _nothing_stored(client, grid)


def test_request_headers_that_never_end_are_answered_408_and_closed(master: MasterProcess) -> None:
    with socket.create_connection(("127.0.0.1", master.port), timeout=HEADER_TIMEOUT + 10) as sock:
        sock.sendall(b"GET /v1/ping HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        answer = b""
        while chunk := sock.recv(4096):  # until the master closes the connection
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408 ")
    with httpx.Client(base_url=master.url) as client:
        assert client.get("/v1/ping").status_code == 200


def test_request_headers_over_the_limit_are_431(master: MasterProcess) -> None:
    with httpx.Client(base_url=master.url) as client:
        response = client.get("/v1/ping", headers={"x-big": "a" * 100_000})
    assert response.status_code == 431


def test_openapi_lists_the_error_statuses_of_each_operation(master: MasterProcess) -> None:
    with master.client(None) as client:
        doc = client.get("/openapi.json").json()
    checked = 0
    for path, operations in doc["paths"].items():
        if path == "/v1/ping":
            continue
        for method, operation in operations.items():
            statuses = set(operation["responses"])
            assert {"401", "403"} <= statuses, (method, path, statuses)
            if "{" in path:
                assert {"404", "422"} <= statuses, (method, path, statuses)
            if "requestBody" in operation:
                assert {"400", "413", "415", "422"} <= statuses, (method, path, statuses)
            if method in ("post", "put", "delete"):
                assert "409" in statuses, (method, path, statuses)
            for status in statuses - {"200", "201"}:
                schema = operation["responses"][status]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorOut"}, (method, path, status)
            checked += 1
    assert checked >= 20

"""CLI behaviour that needs no master: stack validation, and input checks made before any request."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

FIXTURES = Path(__file__).parent.parent / "fixtures" / "stacks"


def moorage(*args: str, tmp_path: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOORAGE_")}
    env["MOORAGE_CONFIG"] = str(tmp_path / "config.json")
    return subprocess.run(
        [sys.executable, "-m", "moorage", *args],
        env=env,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
    )


def test_validate_prints_the_normalized_stack(tmp_path: Path) -> None:
    result = moorage("stack", "validate", str(FIXTURES / "valid" / "seed-redis.yml"), tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    stack = yaml.safe_load(result.stdout)
    assert stack["stack"] == "redis"
    assert stack["services"]["redis"]["volumes"] == ["redis-data:/data"]
    assert stack["services"]["redis"]["instances"] == 1
    assert stack["services"]["redis"]["deploy"] == {"strategy": "ha"}
    assert stack["volumes"] == {"redis-data": {"external": True}}


def test_validate_lists_every_problem_with_its_path_and_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "bad.yml"
    path.write_text(
        "stack: test/bad\nservices:\n  web:\n    image: busybox:local\n    volumes:\n      - data:data\n      - /a:/b\n      - /a:/b\n"
    )
    result = moorage("stack", "validate", str(path), tmp_path=tmp_path)
    assert result.returncode == 1
    assert f"{path} is not a valid stack file (2 problems):" in result.stderr
    assert "services.web.volumes[0]: volume definition not in right format: data:data" in result.stderr
    assert (
        "services.web.volumes[2]: container path '/b' is already mounted by services.web.volumes[1]"
        in result.stderr
    )
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("volume", "create", "--driver", "local", "v1"), "Missing option '--scope'"),
        (("volume", "create", "--scope", "grid", "v1"), "Missing option '--driver'"),
        (
            ("volume", "create", "--scope", "grid", "--driver", "local", "--driver-opt", "novalue", "v1"),
            "'novalue' is not key=value",
        ),
        (("volume", "rm", "v1"), "Command requires --force"),
        (("stack", "install", "/nonexistent.yml"), "No grid selected"),
        (("node", "ls"), "No master URL: run 'moorage login --url URL --token TOKEN', or set MOORAGE_URL"),
        (
            ("stack", "validate", "/nonexistent.yml"),
            "Cannot read stack file /nonexistent.yml: No such file or directory",
        ),
    ],
    ids=[
        "volume-no-scope",
        "volume-no-driver",
        "driver-opt-without-value",
        "rm-without-force",
        "no-grid",
        "no-master",
        "missing-file",
    ],
)
def test_input_errors_exit_1_with_a_sentence(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    result = moorage(*args, tmp_path=tmp_path)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "usage", "message"),
    [
        (("nosuch",), "Usage: moorage [OPTIONS] COMMAND", "No such command 'nosuch'"),
        (("volume", "nosuch"), "Usage: moorage volume [OPTIONS] COMMAND", "No such command 'nosuch'"),
        (("volume", "ls", "--bogus"), "Usage: moorage volume ls [OPTIONS]", "No such option: --bogus"),
        (("--bogus", "grid", "ls"), "Usage: moorage [OPTIONS] COMMAND", "No such option: --bogus"),
        (("volume", "create"), "Usage: moorage volume create", "Missing argument"),
        (("stack", "validate"), "Usage: moorage stack validate", "Missing argument"),
        (("grid", "ls", "--grid"), "Usage: moorage grid ls", "No such option: --grid"),
        (("--grid",), "Usage: moorage [OPTIONS] COMMAND", "Option '--grid' requires an argument"),
        (
            ("service", "scale", "web", "many"),
            "Usage: moorage service scale",
            "Invalid value for 'instances'",
        ),
        (("volume", "ls", "--json=yes"), "Usage: moorage volume ls", "Option '--json' does not take a value"),
        (("volume", "ls", "extra"), "Usage: moorage volume ls", "Got unexpected extra argument(s) (extra)"),
    ],
    ids=[
        "unknown-command",
        "unknown-sub-command",
        "unknown-option",
        "unknown-global-option",
        "missing-argument",
        "missing-file-argument",
        "option-of-another-level",
        "option-without-its-value",
        "bad-argument-value",
        "value-for-a-flag",
        "extra-argument",
    ],
)
def test_usage_errors_print_the_usage_and_exit_2(
    tmp_path: Path, args: tuple[str, ...], usage: str, message: str
) -> None:
    result = moorage(*args, tmp_path=tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert usage in result.stderr
    assert f"Error: {message}" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize("args", [(), ("volume",)], ids=["no-command", "no-sub-command"])
def test_a_command_group_without_its_command_shows_help_and_exits_2(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    result = moorage(*args, tmp_path=tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Usage: moorage" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_a_stack_file_that_is_not_utf8_exits_1_with_the_file_and_byte_offset(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yml"
    path.write_bytes(b"stack: demo\nservices:\n  web:\n    image: caf\xe9\n")
    result = moorage("stack", "validate", str(path), tmp_path=tmp_path)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert (
        f"{path}: not UTF-8 text: the byte 0xE9 at offset 43 (line 4, byte 15 of the line)" in result.stderr
    )
    assert "save the file as UTF-8" in result.stderr
    assert "Traceback" not in result.stderr

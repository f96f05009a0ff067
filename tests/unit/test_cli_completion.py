"""Shell completion for ``moorage`` (Typer's own): the script it prints, bash completing with it,
and ``--install-completion`` putting it where bash reads it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).with_name("moorage")  # the console script pip made ([project.scripts])


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOORAGE_", "_MOORAGE_"))}
    env |= {
        "MOORAGE_CONFIG": str(tmp_path / "config.json"),
        "HOME": str(tmp_path),
        "PATH": f"{SCRIPT.parent}{os.pathsep}{env.get('PATH', '')}",  # where bash finds `moorage`
    }
    return env


def _run(argv: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=_env(tmp_path), capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    "command", [[str(SCRIPT)], [sys.executable, "-m", "moorage"]], ids=["console-script", "python-m"]
)
def test_show_completion_prints_a_bash_script_for_moorage(command: list[str], tmp_path: Path) -> None:
    result = _run([*command, "--show-completion", "bash"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "_MOORAGE_COMPLETE=complete_bash" in result.stdout
    assert "complete -o default -F _moorage_completion moorage" in result.stdout


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("moorage vol", ["volume"]),
        ("moorage volume ", ["backup", "create", "ls", "move", "prune", "purge", "rm", "show", "update"]),
        ("moorage stack ins", ["install"]),
        ("moorage volume ls --j", ["--json"]),
    ],
    ids=["command", "sub-command", "sub-command-prefix", "option"],
)
def test_bash_completes_with_the_script(line: str, expected: list[str], tmp_path: Path) -> None:
    """What bash offers after TAB: the printed script sourced, then its function called as bash would."""
    script = _run([str(SCRIPT), "--show-completion", "bash"], tmp_path).stdout
    words = line.split(" ")
    program = "\n".join(
        [
            script,
            f"COMP_WORDS=({' '.join(repr(w) for w in words)})",
            f"COMP_CWORD={len(words) - 1}",
            "_moorage_completion moorage",
            'printf "%s\\n" "${COMPREPLY[@]}"',
        ]
    )
    result = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", program],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.split()) == expected, result.stdout + result.stderr


def test_the_completion_protocol_answers_without_the_script(tmp_path: Path) -> None:
    """What the script runs on every TAB: ``_MOORAGE_COMPLETE=complete_bash moorage``."""
    env = _env(tmp_path) | {
        "_MOORAGE_COMPLETE": "complete_bash",
        "COMP_WORDS": "moorage gr",
        "COMP_CWORD": "1",
    }
    result = subprocess.run([str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["grid"]


def test_install_completion_makes_bash_source_the_script(tmp_path: Path) -> None:
    result = _run([str(SCRIPT), "--install-completion", "bash"], tmp_path)
    assert result.returncode == 0, result.stderr
    installed = tmp_path / ".bash_completions" / "moorage.sh"
    assert "_MOORAGE_COMPLETE=complete_bash" in installed.read_text()
    assert f"source '{installed}'" in (tmp_path / ".bashrc").read_text()
    assert "bash completion installed" in result.stdout

"""What a ``moorage`` command imports before it runs (every command pays for it): the CLI's modules
and Typer's command tree, not what only some commands use (see ``moorage.cli``)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

# Each is imported by the commands that need it, when they need it.
NOT_AT_START = [
    "moorage.client",  # calling the master (httpx), where a client is made
    "httpx",
    "rich.console",  # showing a table or an error (moorage.cli.output)
    "rich.live",  # following a deployment on a terminal
    "yaml",  # reading a stack file
    "moorage.stackfile",
    "moorage.master",  # moorage master
    "moorage.agent",  # moorage agent
    "moorage.testbed",  # moorage testbed, moorage up
    "docker",
    "sqlalchemy",
    "ssl",
    "pydantic",  # only the stack commands (typer 0.29 imports it for every command: pyproject pins < 0.29)
    # the sub-command groups, each built when a command line names it (moorage.cli.lazy_groups)
    "moorage.cli.grid",
    "moorage.cli.node",
    "moorage.cli.volume",
    "moorage.cli.stack",
    "moorage.cli.service",
    "moorage.cli.testbed",
    "moorage.cli.driver",
    "moorage.cli.token",
]


def _loaded_after(code: str) -> list[str]:
    """Which of NOT_AT_START a fresh interpreter has loaded after running ``code``."""
    probe = f"import json, sys\n{textwrap.dedent(code)}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    modules = set(json.loads(done.stdout.splitlines()[-1]))
    return [name for name in NOT_AT_START if name in modules]


def test_the_cli_and_its_command_tree_import_none_of_the_heavy_modules() -> None:
    loaded = _loaded_after(
        """
        import typer.main
        from moorage.cli.main import app
        typer.main.get_command(app)
        """
    )
    assert loaded == []


def test_volume_ls_loads_the_client_but_not_the_stack_file_pipeline() -> None:
    loaded = _loaded_after(
        """
        import httpx
        from typer.testing import CliRunner
        from moorage.cli.main import app

        def master(request):
            return httpx.Response(200, json={"volumes": []})

        env = {"MOORAGE_URL": "http://master.test", "MOORAGE_TOKEN": "t", "MOORAGE_GRID": "g",
               "MOORAGE_CONFIG": "/nonexistent/config.json"}
        result = CliRunner().invoke(app, ["volume", "ls"], obj=httpx.MockTransport(master), env=env)
        assert result.exit_code == 0, result.output
        """
    )
    assert "moorage.client" in loaded
    assert "moorage.cli.volume" in loaded
    assert "pydantic" not in loaded, (
        "typer >= 0.29 imports it: pip install -e '.[dev]' (pyproject pins < 0.29)"
    )
    unused = {"yaml", "moorage.stackfile", "moorage.master", "docker", "sqlalchemy", "moorage.cli.stack"}
    assert not unused & set(loaded)

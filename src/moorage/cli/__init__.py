"""The ``moorage`` command (Typer + Rich).

What every command pays before it runs: the interpreter, Typer, ``main`` with the root's commands,
the one sub-command group a command line names (``lazy_groups``: a group's module is imported, and
its commands built, only then) and reading the config. So these modules import at their top only
the standard library, Typer and each other; what only some commands use is imported inside the
functions that use it:

- ``moorage.client.api`` (httpx): where a client is made (``CliContext.client()``, ``login``, ``up``)
  or its errors are caught (following a deployment);
- Rich: by ``output`` when it prints a table or an error, and by ``progress`` for its live view;
- the stack file pipeline and YAML: by the ``stack`` commands that read a file;
- the master, the agent, the testbed, the volume plugin: by their commands.

Type annotations name those modules under ``TYPE_CHECKING``. ``tests/unit/test_cli_imports.py``
holds the rule; ``bench/bench_cli.py`` times the commands from the shell.
"""

"""restic, the backup engine: run on a host (``command.py``) and its ``--json`` output read
(``output.py``). The master runs it for repository work (init, snapshots, forget, stats); agents
run the same binary inside helper containers that mount the Docker volume (``agent/backups.py``)."""

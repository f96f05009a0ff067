"""Volume backups through Moorage vs raw restic on the host, on the same data in the same run.

    python bench/bench_volume_backup.py            # a 1 GiB volume (1024 files of 1 MiB)
    python bench/bench_volume_backup.py --smoke    # 64 MiB: checks that it still works

On a 1-node testbed (``--dir``, default /tmp/mrg-bench-backup): a volume of the local driver
mounted by a running container, filled with random data, and two restic repositories in a
temporary folder (one for Moorage, one for raw restic, so both first backups are first).

first        ``moorage volume backup create`` (POST, then polled until the job is done: helper
             image, pause, restic in a helper container, the manifest read in the same window)
             vs ``restic backup`` of the volume's folder on the host (``.../volumes/NAME/_data``)
incremental  the same after 1% of the files were written anew (same files for both)
restore      ``restore --as`` into a new Docker volume vs ``restic restore`` into a new folder

Targets: Moorage <= 1.3x raw for each, and Moorage's incremental <= 0.25x its first backup.
Needs root, docker.io and restic (the testbed, scripts/setup).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import IMAGE, Bed, BenchError, load_average, log, machine, one_node_bed, wait_until

PASSWORD = "bench-password"
LIMIT_RAW = 1.3
LIMIT_INCREMENTAL = 0.25


def restic(repo: Path, cache: Path, *args: str) -> float:
    began = time.monotonic()
    done = subprocess.run(
        ["restic", "-r", str(repo), "--cache-dir", str(cache), *args],
        env={**os.environ, "RESTIC_PASSWORD": PASSWORD},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"restic {args[0]} failed: {done.stderr[-500:]}")
    return time.monotonic() - began


def job_seconds(bed: Bed, path: str, body: dict[str, object]) -> float:
    began = time.monotonic()
    answer = bed.master.post(path, body)
    jobs = answer.get("jobs", [answer])
    for job in jobs:
        done = wait_until(
            lambda j=job: (
                (s := bed.master.get(f"/v1/backup-jobs/{bed.grid}/{j['id']}"))["state"] != "running" and s
            ),
            1800,
            f"job {job['id']}",
            interval=0.1,
        )
        if done["state"] != "done":
            raise BenchError(f"{done['kind']} failed: {done['error']}")
    return time.monotonic() - began


def write_files(bed: Bed, container: str, names: list[int]) -> None:
    script = " && ".join(f"dd if=/dev/urandom of=/data/f{n} bs=1M count=1 2>/dev/null" for n in names)
    exec_id = bed.api.exec_create(container, ["sh", "-c", script])["Id"]
    bed.api.exec_start(exec_id)
    if bed.api.exec_inspect(exec_id)["ExitCode"] != 0:
        raise BenchError("writing the volume's files failed")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--dir", type=Path, default=Path("/tmp/mrg-bench-backup"))
    args = parser.parse_args()
    files = 64 if args.smoke else 1024
    changed = list(range(0, files, 100))[: max(1, files // 100)]
    work = Path(tempfile.mkdtemp(prefix="moorage-bench-backup-"))
    try:
        with one_node_bed(args.dir) as bed:
            return run(bed, work, files, changed)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(bed: Bed, work: Path, files: int, changed: list[int]) -> int:
    grid, volume = bed.grid, "benchdata"
    moorage_repo, raw_repo, raw_cache = work / "moorage-repo", work / "raw-repo", work / "raw-cache"
    bed.master.request(
        "PUT", f"/v1/grids/{grid}/backup-repo", {"url": str(moorage_repo), "password": PASSWORD}
    )
    restic(raw_repo, raw_cache, "init")
    bed.master.post(f"/v1/volumes/{grid}", {"name": volume, "scope": "instance", "driver": "local"})
    bed.master.post(
        f"/v1/services/{grid}",
        {
            "name": "bench",
            "image": IMAGE,
            "cmd": "sleep 36000",
            "volumes": [f"{volume}:/data"],
            "deploy": True,
        },
    )
    container = wait_until(
        lambda: next(
            iter(bed.api.containers(filters={"label": "io.moorage.service=bench", "status": "running"})), None
        ),
        120,
        "the service's container",
    )["Id"]
    log(f"writing {files} MiB of random data")
    for start in range(0, files, 64):
        write_files(bed, container, list(range(start, min(files, start + 64))))
    (mount,) = bed.api.inspect_container(container)["Mounts"]
    data = Path(mount["Source"])  # the local driver's folder: on this host, under the engine's data root
    if not data.is_dir():
        raise BenchError(f"the volume's folder {data} is not on this host")
    log(f"the volume's data on the host: {data} (Docker volume {mount['Name']})")

    figures: dict[str, tuple[float, float]] = {}
    backup = {"volume": volume, "quiesce": "pause"}
    log("first backups")
    moorage_first = job_seconds(bed, f"/v1/backups/{grid}", backup)
    raw_first = restic(raw_repo, raw_cache, "backup", "--host", "raw", str(data))
    figures["first backup"] = (moorage_first, raw_first)

    write_files(bed, container, changed)
    log(f"incremental backups ({len(changed)} of {files} files written anew)")
    moorage_incremental = job_seconds(bed, f"/v1/backups/{grid}", backup)
    raw_incremental = restic(raw_repo, raw_cache, "backup", "--host", "raw", str(data))
    figures["incremental"] = (moorage_incremental, raw_incremental)

    newest = max(bed.master.get(f"/v1/backups/{grid}")["backups"], key=lambda b: b["time"])
    log("restores")
    moorage_restore = job_seconds(bed, f"/v1/backups/{grid}/{newest['id']}/restore", {"as": "benchrestored"})
    raw_restore = restic(raw_repo, raw_cache, "restore", "latest", "--target", str(work / "raw-restored"))
    figures["restore"] = (moorage_restore, raw_restore)

    print(f"# {machine()}; load {load_average():.1f}; volume {files} MiB in {files} files", flush=True)
    failed = False
    for what, (moorage, raw) in figures.items():
        ratio = moorage / raw
        ok = ratio <= LIMIT_RAW
        failed |= not ok
        print(
            f"{what:13s} moorage {moorage:7.2f}s  raw restic {raw:7.2f}s  ratio {ratio:5.2f}x (<= {LIMIT_RAW}) {'ok' if ok else 'OVER'}"
        )
    incremental_ratio = moorage_incremental / moorage_first
    ok = incremental_ratio <= LIMIT_INCREMENTAL
    failed |= not ok
    print(
        f"incremental / first backup (moorage) {incremental_ratio:5.2f}x (<= {LIMIT_INCREMENTAL}) {'ok' if ok else 'OVER'}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

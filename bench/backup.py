#!/usr/bin/env python3
"""Backup and deep-verify throughput against ``cp -a`` and ``sha256sum`` of the same files, in one run.

    .venv/bin/python bench/backup.py [--assets 10000] [--size 5GiB] [--runs 3] [--markdown]

Builds a data directory with one raw hosted repository holding ``--assets`` files of ``--size`` bytes in
all (sizes spread from 1 KiB to 4x the mean, every file distinct content), written in-process through the
repository API (so every blob is a real, recorded, fsynced blob). Then, alternating and ``--runs`` times:

- ``cp -a`` of the blob store directory into a fresh directory on the same file system, then ``sync``;
- ``stowage backup --no-link`` into a fresh backup directory (copies, like cp; includes its own final sync);
- ``sha256sum`` of every blob file (one process, as an operator would run it);
- ``stowage verify --deep`` (re-hashes every blob, checks every asset; 2 hashing threads).

Also once: ``stowage backup`` with hard links (same file system), and an incremental backup after adding
1% new content (reports the bytes it copied). Each figure is the median; MiB/s counts the content bytes.
Goals (issue #18): backup >= 70% of cp -a's rate, deep verify >= 70% of sha256sum's.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MIB = 1 << 20
GOALS = {"backup": 0.70, "verify": 0.70}
STOWAGE = str(Path(sys.executable).with_name("stowage"))


def parse_size(text: str) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB)?", text.strip(), re.I)
    if not match:
        raise argparse.ArgumentTypeError(f"size like 5GiB or 512MiB, not {text!r}")
    units = {"b": 1, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30}
    return int(float(match.group(1)) * units[(match.group(2) or "B").lower()])


def sizes_for(assets: int, total: int, seed: int = 18) -> list[int]:
    """``assets`` sizes summing to ``total``: mostly small, some large, as an artifact store is."""
    rng = random.Random(seed)
    weights = [rng.paretovariate(1.5) for _ in range(assets)]
    scale = total / sum(weights)
    sizes = [max(1024, int(w * scale)) for w in weights]
    sizes[-1] += total - sum(sizes)
    return sizes


def build(data_dir: Path, assets: int, total: int, prefix: str = "files") -> None:
    os.environ.setdefault("STOWAGE_ADMIN_PASSWORD", "bench-password")
    from stowage.app import create_stowage
    from stowage.pluginmanager import make_plugin_manager
    from stowage.settings import ConfigFile, ServerSettings

    settings = ServerSettings(data_dir=str(data_dir))
    stowage = create_stowage(settings, make_plugin_manager(), config=ConfigFile(server=settings, repositories=(
        {"name": "raw-hosted", "format": "raw", "type": "hosted"},)))
    repository = stowage.repository("raw-hosted")
    block = os.urandom(4 * MIB)
    started = time.monotonic()
    for i, size in enumerate(sizes_for(assets, total, seed=hash(prefix) & 0xFFFF)):
        head = f"{prefix}-{i}-{time.time_ns()}".encode()
        data = (head + block[len(head):size]) if size <= len(block) else head + (block * (size // len(block) + 1))[len(head):size]
        repository.store(f"{prefix}/{i % 100}/{i}.bin", io.BytesIO(data), length=len(data))
        if i and i % 1000 == 0:
            print(f"  built {i} assets ({time.monotonic() - started:.0f} s)", file=sys.stderr)
    stowage.close()


def timed(command: list[str], **kwargs) -> float:
    started = time.monotonic()
    subprocess.run(command, check=True, capture_output=True, **kwargs)
    return time.monotonic() - started


def blob_files(data_dir: Path) -> list[str]:
    return [str(p) for p in (data_dir / "blobs" / "default" / "blobs").glob("*/*/*")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assets", type=int, default=10_000)
    parser.add_argument("--size", type=parse_size, default=parse_size("5GiB"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", help="work directory (default: a temporary one, removed at the end)")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    for tool in ("cp", "sha256sum", "sync"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is required")
    work = Path(args.dir or tempfile.mkdtemp(prefix="stowage-bench-backup-"))
    data = work / "data"
    try:
        print(f"building {args.assets} assets, {args.size / MIB:.0f} MiB in {data}", file=sys.stderr)
        build(data, args.assets, args.size)
        files = blob_files(data)
        total = sum(os.path.getsize(f) for f in files)
        results: dict[str, list[float]] = {"cp -a": [], "stowage backup": [], "sha256sum": [],
                                           "stowage verify --deep": []}
        for run in range(args.runs):
            target = work / f"cp-{run}"
            results["cp -a"].append(timed(["sh", "-c", f"cp -a '{data / 'blobs'}' '{target}' && sync"]))
            shutil.rmtree(target)
            backup = work / f"backup-{run}"
            results["stowage backup"].append(timed([STOWAGE, "backup", "--data-dir", str(data), "--to", str(backup),
                                                    "--no-link", "--quiet"]))
            shutil.rmtree(backup)
            results["sha256sum"].append(timed(["sh", "-c", f"cd '{data}' && find blobs -type f -path '*/blobs/*/*/*' "
                                                           f"-print0 | xargs -0 sha256sum > /dev/null"]))
            results["stowage verify --deep"].append(timed([STOWAGE, "verify", "--data-dir", str(data), "--deep",
                                                           "--quiet"]))
            print(f"  run {run + 1}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in results.items()), file=sys.stderr)
        linked = timed([STOWAGE, "backup", "--data-dir", str(data), "--to", str(work / "linked"), "--quiet"])
        incremental_dir = work / "incremental"
        timed([STOWAGE, "backup", "--data-dir", str(data), "--to", str(incremental_dir), "--no-link", "--quiet"])
        build(data, max(1, args.assets // 100), max(MIB, args.size // 100), prefix="new")
        started = time.monotonic()
        second = subprocess.run([STOWAGE, "backup", "--data-dir", str(data), "--to", str(incremental_dir),
                                 "--no-link", "--quiet"], check=True, capture_output=True, text=True).stdout
        incremental = time.monotonic() - started
    finally:
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)

    median = {k: statistics.median(v) for k, v in results.items()}
    rate = {k: total / MIB / v for k, v in median.items()}
    backup_ratio = rate["stowage backup"] / rate["cp -a"]
    verify_ratio = rate["stowage verify --deep"] / rate["sha256sum"]
    copied = re.search(r"copied (\d+) new blobs \(([^)]+)\)", second)
    rows = [
        ("cp -a (then sync)", median["cp -a"], rate["cp -a"], ""),
        ("stowage backup --no-link", median["stowage backup"], rate["stowage backup"],
         f"{backup_ratio:.0%} of cp -a (goal {GOALS['backup']:.0%})"),
        ("sha256sum", median["sha256sum"], rate["sha256sum"], ""),
        ("stowage verify --deep", median["stowage verify --deep"], rate["stowage verify --deep"],
         f"{verify_ratio:.0%} of sha256sum (goal {GOALS['verify']:.0%})"),
        ("stowage backup (hard links)", linked, total / MIB / linked, "same file system"),
    ]
    header = f"{args.assets} assets, {total / MIB:.0f} MiB, median of {args.runs} runs"
    if args.markdown:
        print(f"{header}\n\n| what | seconds | MiB/s | |\n|---|---|---|---|")
        for name, seconds, mibs, note in rows:
            print(f"| {name} | {seconds:.1f} | {mibs:.0f} | {note} |")
    else:
        print(header)
        for name, seconds, mibs, note in rows:
            print(f"{name:30} {seconds:8.1f} s {mibs:8.0f} MiB/s  {note}")
    print(f"\nincremental backup after adding 1% ({copied.group(1) if copied else '?'} blobs, "
          f"{copied.group(2) if copied else '?'}): {incremental:.1f} s")
    return 0 if backup_ratio >= GOALS["backup"] and verify_ratio >= GOALS["verify"] else 1


if __name__ == "__main__":
    sys.exit(main())

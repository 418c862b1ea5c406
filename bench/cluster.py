#!/usr/bin/env python3
"""One node (SQLite + file store) against three nodes (PostgreSQL + S3 on moto) behind nginx, in one run.

    .venv/bin/python bench/cluster.py [--seconds 10] [--connections 32] [--markdown]

The same workload on both set-ups, through plain HTTP on loopback:

- small GETs: ``wrk`` on a 1 KiB raw file (requests/s);
- large downloads: four concurrent ``curl`` downloads of a 64 MiB file (MiB/s in all);
- uploads: 200 PUTs of 16 KiB distinct files from 8 threads (uploads/s).

The single node is ``stowage serve`` with SQLite and a file blob store; the cluster is three ``stowage
serve`` nodes on 127.0.0.2-4 sharing a PostgreSQL catalog (a throw-away server from the test kit) and one
S3 bucket (moto in server mode, or the server ``STOWAGE_TEST_S3_ENDPOINT`` names), behind nginx (the
set-up of tests/cluster_kit.py, which this reuses).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import urllib3

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from cluster_kit import Cluster  # noqa: E402
from core_helpers import ServeProcess  # noqa: E402
from stowage.testing.harness import ADMIN_PASSWORD, basic_auth  # noqa: E402
from stowage.testing.postgres import PostgresServer, postgres_bin_dir  # noqa: E402
from stowage.testing.s3 import start_s3_server  # noqa: E402

MIB = 1 << 20
CONFIG = """
[server]
secretKey = "bench-secret-key-bench-secret-key"
threads = 16

{blob_store}
[[repositories]]
name = "raw-hosted"
format = "raw"
type = "hosted"
storage = {{ blobStoreName = "shared" }}
"""
HTTP = urllib3.PoolManager(maxsize=16, retries=False, timeout=120)


def small_gets(base: str, seconds: int, connections: int) -> float:
    output = subprocess.run(["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s",
                             f"{base}/repository/raw-hosted/small.txt"], capture_output=True, text=True,
                            check=True).stdout
    return float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))


def downloads(base: str, parallel: int = 4) -> float:
    def one(_: int) -> int:
        out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{size_download}",
                              f"{base}/repository/raw-hosted/big.bin"], capture_output=True, text=True, check=True)
        return int(out.stdout)

    started = time.monotonic()
    with ThreadPoolExecutor(parallel) as pool:
        total = sum(pool.map(one, range(parallel)))
    return total / MIB / (time.monotonic() - started)


def uploads(base: str, label: str, count: int = 200) -> float:
    def one(i: int) -> int:
        body = hashlib.sha256(f"{label}-{i}".encode()).digest() * 512
        return HTTP.request("PUT", f"{base}/repository/raw-hosted/up/{label}/{i}.bin", body=body,
                            headers=basic_auth()).status

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(one, range(count)))
    assert statuses == [201] * count, set(statuses)
    return count / (time.monotonic() - started)


def seed(base: str, big: Path) -> None:
    assert HTTP.request("PUT", f"{base}/repository/raw-hosted/small.txt", body=b"x" * 1024,
                        headers=basic_auth()).status == 201
    with open(big, "rb") as body:
        assert HTTP.request("PUT", f"{base}/repository/raw-hosted/big.bin", body=body,
                            headers=basic_auth()).status == 201


def measure(base: str, label: str, args: argparse.Namespace) -> dict[str, float]:
    small_gets(base, 2, args.connections)  # warm-up: connections, caches, prepared statements
    return {"small GETs/s": small_gets(base, args.seconds, args.connections), "64 MiB downloads MiB/s":
            downloads(base), "uploads/s": uploads(base, label)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    os.environ["STOWAGE_ADMIN_PASSWORD"] = ADMIN_PASSWORD
    work = Path(tempfile.mkdtemp(prefix="stowage-bench-cluster-"))
    big = work / "big.bin"
    with open(big, "wb") as handle:
        for _ in range(64):
            handle.write(os.urandom(MIB))
    results: dict[str, dict[str, float]] = {}

    single_config = work / "single.toml"
    single_config.write_text(CONFIG.format(blob_store=f'[[blobStores]]\nname = "shared"\ntype = "File"\n'
                                                      f'path = "{work / "single-blobs"}"\n'))
    node = ServeProcess(single_config, work / "single").start(timeout=60)
    try:
        seed(node.url, big)
        results["one node, SQLite"] = measure(node.url, "single", args)
    finally:
        node.stop()

    postgres = PostgresServer(postgres_bin_dir()).start()
    s3_servers = start_s3_server()
    s3 = next(s3_servers)
    bucket = s3.create_bucket()
    cluster = Cluster(work / "cluster", CONFIG.format(blob_store=s3.toml("shared", bucket)), postgres.new_database())
    try:
        cluster.start()
        seed(cluster.url, big)
        results["three nodes, PostgreSQL, S3 (moto), nginx"] = measure(cluster.url, "cluster", args)
    finally:
        cluster.stop()
        postgres.stop()
        s3.remove_bucket(bucket)
        s3_servers.close()

    (single, single_values), (three, three_values) = results.items()
    rows = [(metric, single_values[metric], three_values[metric], three_values[metric] / single_values[metric])
            for metric in single_values]
    if args.markdown:
        print(f"| workload | {single} | {three} | ratio |\n|---|---|---|---|")
        for metric, a, b, ratio in rows:
            print(f"| {metric} | {a:.1f} | {b:.1f} | {ratio:.2f}x |")
    else:
        for metric, a, b, ratio in rows:
            print(f"{metric:24} {a:10.1f} {b:10.1f} {ratio:6.2f}x")
    print(f"({os.cpu_count()} cores; wrk -c {args.connections} for {args.seconds}s)")


if __name__ == "__main__":
    main()

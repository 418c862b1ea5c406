#!/usr/bin/env python3
"""A cleanup run over a large hosted repository, and what small GETs see meanwhile, in one run.

    .venv/bin/python bench/cleanup.py [--components 50000] [--markdown]

1. Fills a raw hosted repository with ``--components`` files (a raw file is a component for cleanup)
   through Stowage's own Python API, in batches, before the server starts; half of them match the
   policy's ``criteriaAssetRegex``. Removal goes through the raw format's delete path, one file at a time.
2. Starts ``stowage serve`` on that data directory (the installed ``stowage`` next to this Python).
3. Measures small GETs of kept files with no cleanup running (idle p50/p99), then starts the
   ``repository.cleanup`` task and keeps GETting the same files until it ends: the run's wall time,
   and the GETs' p50/p99 during the run. Every GET must answer 200 with the right bytes.

Goals (issue 12): the run under a minute on the 2-core machine; GET p99 during the run within 3x idle.
A benchmark, not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

PASSWORD = "bench-password"
CLIENTS = 4
GOAL_SECONDS = 60.0
GOAL_P99_RATIO = 3.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def populate_raw(data_dir: Path, count: int) -> list[str]:
    """``count`` files; the odd ones under ``old/`` (what the policy removes). Returns kept paths."""
    from stowage.app import create_stowage
    from stowage.settings import ConfigFile, ServerSettings

    settings = ServerSettings(data_dir=str(data_dir))
    stowage = create_stowage(settings, config=ConfigFile(
        server=settings,
        cleanup_policies=({"name": "old-files", "format": "raw", "criteriaAssetRegex": "old/.*"},),
        repositories=({"name": "files", "format": "raw", "type": "hosted",
                       "cleanup": {"policyNames": ["old-files"]}},)))
    repository = stowage.repository("files")
    blobs = [repository.blob_store.store(io.BytesIO(f"file body {n}\n".encode() * 20)) for n in range(1000)]
    kept = []
    for start in range(0, count, 1000):
        with stowage.catalog.transaction():
            for n in range(start, min(start + 1000, count)):
                path = f"{'old' if n % 2 else 'new'}/d{n // 500}/file-{n}.txt"
                repository.record(path, blobs[n % len(blobs)], content_type="text/plain")
                if not n % 2:
                    kept.append(path)
    stowage.close()
    return kept


class Server:
    def __init__(self, data_dir: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        stowage = str(Path(sys.executable).with_name("stowage"))
        self.process = subprocess.Popen(
            [stowage, "serve", "--data-dir", str(data_dir), "--port", str(self.port)],
            env={**os.environ, "STOWAGE_ADMIN_PASSWORD": PASSWORD}, stdout=subprocess.DEVNULL,
            stderr=open(data_dir / "serve.log", "ab"))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/service/rest/v1/status", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("stowage serve did not start")

    def call(self, method: str, path: str) -> dict:
        token = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
        request = urllib.request.Request(f"{self.url}/service/rest/v1{path}", method=method,
                                         headers={"Authorization": f"Basic {token}"})
        with urllib.request.urlopen(request, timeout=60) as response:
            body = response.read()
        return json.loads(body) if body else {}

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def get_loop(url: str, paths: list[str], stop: threading.Event, latencies: list[float], errors: list[str],
             limit: int | None = None) -> None:
    import http.client

    conn = http.client.HTTPConnection(url.split("://")[1], timeout=30)
    n = 0
    while not stop.is_set() and (limit is None or n < limit):
        path = paths[(n * 7919 + threading.get_ident()) % len(paths)]
        started = time.perf_counter()
        conn.request("GET", f"/repository/files/{path}")
        response = conn.getresponse()
        body = response.read()
        latencies.append(time.perf_counter() - started)
        if response.status != 200 or not body:
            errors.append(f"{response.status} {path}")
        n += 1
    conn.close()


def measure(url: str, paths: list[str], *, requests: int | None = None,
            until: threading.Event | None = None) -> tuple[list[float], list[str]]:
    stop = until or threading.Event()
    latencies: list[float] = []
    errors: list[str] = []
    per_client = requests // CLIENTS if requests else None
    threads = [threading.Thread(target=get_loop, args=(url, paths, stop, latencies, errors, per_client))
               for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, errors


def p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1000 if len(values) > 1 else float("nan")


def main() -> int:
    os.environ["STOWAGE_ADMIN_PASSWORD"] = PASSWORD  # the admin the populating app creates
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--components", type=int, default=50_000)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stowage-bench-cleanup-") as tmp:
        data_dir = Path(tmp) / "data"
        started = time.perf_counter()
        kept = populate_raw(data_dir, args.components)
        print(f"populated {args.components:,} components in {time.perf_counter() - started:.1f}s", file=sys.stderr)
        server = Server(data_dir)
        try:
            measure(server.url, kept, requests=400)  # warm-up
            idle, idle_errors = measure(server.url, kept, requests=4000)
            done = threading.Event()
            during: list[float] = []
            errors: list[str] = []
            loop = threading.Thread(target=lambda: during.extend(measure(server.url, kept, until=done)[0]))
            started = time.perf_counter()
            server.call("POST", "/tasks/repository.cleanup/run")
            loop.start()
            while True:
                task = server.call("GET", "/tasks/repository.cleanup")
                if task["currentState"] == "WAITING" and task["lastRunResult"]:
                    break
                time.sleep(0.2)
            elapsed = time.perf_counter() - started
            done.set()
            loop.join()
            errors += idle_errors
        finally:
            server.stop()
    ratio = p(during, 99) / p(idle, 99)
    rows = [("components", f"{args.components:,} (raw)"), ("task result", task["lastRunResult"]),
            ("task message", task["message"]), ("run wall time", f"{elapsed:.1f} s (goal < {GOAL_SECONDS:.0f} s)"),
            ("GETs idle", f"{len(idle)}: p50 {p(idle, 50):.2f} ms, p99 {p(idle, 99):.2f} ms"),
            ("GETs during the run", f"{len(during)}: p50 {p(during, 50):.2f} ms, p99 {p(during, 99):.2f} ms"),
            ("p99 during / idle", f"{ratio:.2f}x (goal <= {GOAL_P99_RATIO:.0f}x)"),
            ("GET errors", str(len(errors)))]
    if args.markdown:
        print("| measure | value |\n|---|---|")
        for key, value in rows:
            print(f"| {key} | {value} |")
    else:
        for key, value in rows:
            print(f"{key:>22}: {value}")
    ok = task["lastRunResult"] == "OK" and not errors and elapsed < GOAL_SECONDS and ratio <= GOAL_P99_RATIO
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Blob throughput of Stowage's raw hosted repository against nginx on the same machine, in one run.

    .venv/bin/python bench/blobs.py [--runs 3] [--big-mib 1024] [--markdown]

Starts a ``stowage serve`` subprocess (the installed ``stowage`` next to this Python) and Debian's nginx
(a private config on a free loopback port; WebDAV ``PUT`` for uploads), then measures with the same clients
against both:

- one download of a 1 GiB file (curl);
- 16 concurrent downloads of a 64 MiB file (16 curl processes; aggregate MiB/s);
- one upload of a 1 GiB file (curl --upload-file; Stowage hashes with sha256 and fsyncs, nginx does neither);
- 4 KiB GETs per second (wrk, 1 thread, 16 connections; a threaded Python client if wrk is missing).

Each measurement is the median of ``--runs``; ratios are Stowage / nginx. Needs: curl, nginx, wrk.
This is a benchmark, not a test: numbers depend on the machine; the ratios are what to compare.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

MIB = 1 << 20
PASSWORD = "bench-password"
GOALS = {"download": 0.90, "concurrent": 0.75, "upload": 0.35}
SMALL_GOAL = 4000.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url], capture_output=True,
                                text=True)
        if result.stdout not in ("000", ""):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def write_file(path: Path, size: int) -> None:
    block = os.urandom(MIB)
    with open(path, "wb") as handle:
        for i in range(0, size, MIB):
            handle.write((i.to_bytes(8, "big") + block[8:])[: size - i])


def restamp(path: Path, run: int) -> None:
    """Change the first bytes so every upload is new content (a new digest, no deduplication)."""
    with open(path, "r+b") as handle:
        handle.write(f"run-{run:04d}-{time.time_ns()}".encode())


def curl_stat(*args: str) -> float:
    result = subprocess.run(["curl", "-sS", "-f", *args, "-w", "%{time_total}"], capture_output=True, text=True,
                            check=True)
    return float(result.stdout.strip().split()[-1])


class Stowage:
    def __init__(self, root: Path, threads: int | None, workers: int = 1, request_log: str = "log/request.log"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = root / "stowage.toml"
        config.write_text(f'[server]\nrequestLog = "{request_log}"\n\n'
                          '[[repositories]]\nname = "bench"\nformat = "raw"\ntype = "hosted"\n'
                          'storage = { writePolicy = "ALLOW" }\n')
        command = [str(Path(sys.executable).with_name("stowage")), "--log-level", "WARNING", "serve",
                   "--config", str(config), "--data-dir", str(root / "stowage-data"), "--port", str(self.port)]
        if threads:
            command += ["--threads", str(threads)]
        if workers > 1:
            command += ["--workers", str(workers)]
        self.process = subprocess.Popen(command, env={**os.environ, "STOWAGE_ADMIN_PASSWORD": PASSWORD},
                                        stdout=open(root / "stowage.log", "wb"), stderr=subprocess.STDOUT)
        wait_for(f"{self.url}/service/rest/v1/status")

    def file_url(self, name: str) -> str:
        return f"{self.url}/repository/bench/{name}"

    def put(self, source: Path, name: str) -> float:
        return curl_stat("-u", f"admin:{PASSWORD}", "--upload-file", str(source), "-o", "/dev/null",
                         self.file_url(name))

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(60)


class Nginx:
    def __init__(self, root: Path, workers: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.root = root / "nginx"
        (self.root / "www").mkdir(parents=True)
        (self.root / "tmp").mkdir()
        config = self.root / "nginx.conf"
        # As root, nginx's workers would drop to "nobody" and could not read our private temp directory.
        user = "user root;" if os.geteuid() == 0 else ""
        config.write_text(f"""
daemon off;
{user}
worker_processes {workers};
pid {self.root}/nginx.pid;
error_log {self.root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path {self.root}/tmp;
    types {{ }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{self.port};
        root {self.root}/www;
        client_max_body_size 0;
        location / {{
            dav_methods PUT DELETE;
            create_full_put_path on;
            dav_access user:rw;
        }}
    }}
}}
""")
        self.process = subprocess.Popen(["nginx", "-c", str(config), "-p", str(self.root)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.url + "/")

    def file_url(self, name: str) -> str:
        return f"{self.url}/{name}"

    def put(self, source: Path, name: str) -> float:
        return curl_stat("--upload-file", str(source), "-o", "/dev/null", self.file_url(name))

    def stop(self) -> None:
        self.process.send_signal(signal.SIGQUIT)
        self.process.wait(30)


BARE_APP = """
import sys, falcon, waitress
body = open(sys.argv[2], "rb").read()
class Small:
    def on_get(self, req, resp):
        resp.data = body
        resp.content_type = "application/octet-stream"
app = falcon.App()
app.add_route("/small.bin", Small())
waitress.serve(app, host="127.0.0.1", port=int(sys.argv[1]), threads=16, asyncore_use_poll=True, _quiet=True)
"""


class BareWaitress:
    """The floor for small requests: a falcon app answering 4 KiB from memory on the same waitress."""

    def __init__(self, small: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen([sys.executable, "-c", BARE_APP, str(self.port), str(small)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.url + "/small.bin")

    def file_url(self, name: str) -> str:
        return f"{self.url}/{name}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def download_mib_s(url: str, size: int, runs: int) -> float:
    return statistics.median(size / MIB / curl_stat("-o", "/dev/null", url) for _ in range(runs))


def concurrent_mib_s(url: str, size: int, clients: int, runs: int) -> float:
    results = []
    for _ in range(runs):
        start = time.perf_counter()
        processes = [subprocess.Popen(["curl", "-sS", "-f", "-o", "/dev/null", url]) for _ in range(clients)]
        if any(p.wait() for p in processes):
            raise RuntimeError(f"a concurrent download of {url} failed")
        results.append(clients * size / MIB / (time.perf_counter() - start))
    return statistics.median(results)


def upload_mib_s(server: Stowage | Nginx, source: Path, size: int, runs: int, label: str) -> float:
    results = []
    for run in range(runs):
        restamp(source, run)
        results.append(size / MIB / server.put(source, f"up/{label}-{run}.bin"))
    return statistics.median(results)


def small_rps(url: str, seconds: int, runs: int) -> tuple[float, str]:
    if shutil.which("wrk"):
        rates = []
        for _ in range(runs):
            out = subprocess.run(["wrk", "-t1", "-c16", f"-d{seconds}s", url], capture_output=True, text=True,
                                 check=True).stdout
            line = next(line for line in out.splitlines() if line.startswith("Requests/sec:"))
            non2xx = [line for line in out.splitlines() if "Non-2xx" in line]
            if non2xx:
                raise RuntimeError(f"{url}: {non2xx[0]}")
            rates.append(float(line.split()[1]))
        return statistics.median(rates), "wrk -t1 -c16"
    return statistics.median(_python_rps(url, seconds) for _ in range(runs)), "Python, 16 threads, keep-alive"


def _python_rps(url: str, seconds: int) -> float:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    stop = time.monotonic() + seconds
    counts = [0] * 16

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port)
        while time.monotonic() < stop:
            conn.request("GET", parts.path)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"{url}: {response.status}")
            counts[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--medium-mib", type=int, default=64)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=5, help="duration of each small-GET run")
    parser.add_argument("--threads", type=int, help="stowage serve --threads (default: the server's)")
    parser.add_argument("--workers", type=int, default=1,
                        help="stowage serve --workers (the goals are per process: default 1)")
    parser.add_argument("--nginx-workers", default="auto")
    parser.add_argument("--request-log", default="log/request.log",
                        help="the server's [server] requestLog (default: on, under the data directory; 'off')")
    parser.add_argument("--tmp", default=None, help="where to put the files (same disk for both servers)")
    parser.add_argument("--markdown", action="store_true", help="also print a Markdown table")
    args = parser.parse_args()
    for tool in ("curl", "nginx"):
        if not shutil.which(tool):
            print(f"{tool} is required", file=sys.stderr)
            return 2

    root = Path(tempfile.mkdtemp(prefix="stowage-bench-", dir=args.tmp))
    stowage = nginx = None
    try:
        big, medium, small = root / "big.bin", root / "medium.bin", root / "small.bin"
        big_size, medium_size = args.big_mib * MIB, args.medium_mib * MIB
        write_file(big, big_size)
        write_file(medium, medium_size)
        small.write_bytes(os.urandom(4096))
        stowage = Stowage(root, args.threads, args.workers, args.request_log)
        nginx = Nginx(root, args.nginx_workers)
        for name, source in (("big.bin", big), ("medium.bin", medium), ("small.bin", small)):
            stowage.put(source, name)
            shutil.copy(source, nginx.root / "www" / name)

        rows = []

        def measure(label: str, unit: str, goal: str, fn) -> tuple[float, float]:
            s, n = fn(stowage), fn(nginx)
            rows.append((label, s, n, unit, goal))
            print(f"{label:42} stowage {s:10.1f} {unit:6} nginx {n:10.1f} {unit:6} ratio {s / n:5.2f}  (goal {goal})",
                  flush=True)
            return s, n

        ratios = {}
        s, n = measure(f"download {args.big_mib} MiB", "MiB/s", f">= {GOALS['download']:.0%}",
                       lambda srv: download_mib_s(srv.file_url("big.bin"), big_size, args.runs))
        ratios["download"] = s / n
        s, n = measure(f"{args.clients} concurrent downloads of {args.medium_mib} MiB", "MiB/s",
                       f">= {GOALS['concurrent']:.0%}",
                       lambda srv: concurrent_mib_s(srv.file_url("medium.bin"), medium_size, args.clients, args.runs))
        ratios["concurrent"] = s / n
        s, n = measure(f"upload {args.big_mib} MiB (stowage: sha256 + fsync)", "MiB/s",
                       f">= {GOALS['upload']:.0%}",
                       lambda srv: upload_mib_s(srv, big, big_size, args.runs, type(srv).__name__))
        ratios["upload"] = s / n
        client = []

        def small_fn(srv):
            rate, how = small_rps(srv.file_url("small.bin"), args.seconds, args.runs)
            client.append(how)
            return rate

        s_small, _ = measure("4 KiB GETs", "req/s", f">= {SMALL_GOAL:.0f}/s", small_fn)
        bare = BareWaitress(small)
        try:
            floor, _ = small_rps(bare.file_url("small.bin"), args.seconds, args.runs)
        finally:
            bare.stop()
        print(f"{'4 KiB GETs, bare falcon + waitress (floor)':42} {floor:10.1f} req/s; Stowage reaches "
              f"{s_small / floor:.0%} of it")
        rows.append(("4 KiB GETs: bare falcon + waitress, same client", floor, None, "req/s", "(reference)"))

        print()
        verdicts = [(name, ratio >= GOALS[name]) for name, ratio in ratios.items()]
        verdicts.append(("small GETs", s_small >= SMALL_GOAL))
        for name, ok in verdicts:
            print(f"{name:12} {'met' if ok else 'MISSED'}")
        print(f"(nginx worker_processes {args.nginx_workers}; small GETs with {client[0]}; {os.cpu_count()} CPUs; "
              f"median of {args.runs} runs)")
        if args.markdown:
            print("\n| measurement | Stowage | nginx | ratio | goal |\n|---|---|---|---|---|")
            for label, s, n, unit, goal in rows:
                if n is None:
                    print(f"| {label} | {s:,.0f} {unit} | | {s_small / s:.2f} of it | {goal} |")
                else:
                    print(f"| {label} | {s:,.0f} {unit} | {n:,.0f} {unit} | {s / n:.2f} | {goal} |")
        return 0
    finally:
        for server in (stowage, nginx):
            if server is not None:
                try:
                    server.stop()
                except Exception as error:  # keep cleaning up
                    print(f"stopping {server}: {error}", file=sys.stderr)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

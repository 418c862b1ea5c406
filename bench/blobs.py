#!/usr/bin/env python3
"""Blob throughput of Stowage's raw hosted repository against nginx on the same machine, in one run.

    .venv/bin/python bench/blobs.py [--runs 3] [--big-mib 1024] [--markdown]

Starts a ``stowage serve`` subprocess (the installed ``stowage`` next to this Python) and Debian's nginx
(a private config on a free loopback port; WebDAV ``PUT`` for uploads), then measures with the same clients
against both:

- one download of a 1 GiB file (curl);
- 16 concurrent downloads of a 64 MiB file (16 curl processes; aggregate MiB/s);
- one upload of a 1 GiB file (curl --upload-file; Stowage hashes with sha256 and fsyncs, nginx does neither;
  md5/sha1/sha512 of a large blob follow after the response);
- 4 KiB GETs per second (wrk, 1 thread, 16 connections; a threaded Python client if wrk is missing), for
  ``stowage serve`` with no tuning flags and for a matrix of ``--workers`` x ``--threads``, each against a
  bare falcon + waitress app with the same processes and threads (the floor any falcon + waitress app has);
- ``If-None-Match`` revalidations of the same file (304s) against its GETs.

``--small-only`` skips the big transfers (the matrix alone takes a couple of minutes); ``--uploads-only`` measures
the upload alone, and ``--baseline-stowage PROGRAM`` adds another build's upload in the same run (before/after).

Each measurement is the median of ``--runs``; ratios are Stowage / nginx. For small GETs, Stowage and its
bare app run side by side and the runs alternate between them (round by round), so that load from other jobs
weighs on both sides of each ratio alike. Needs: curl, nginx, wrk.
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
GOALS = {"download": 0.90, "concurrent": 0.75, "upload": 0.50}
#: issue 16: 4 KiB GETs with ``stowage serve``'s defaults on 2 cores, and per configuration against the
#: bare app under the same server settings; a 304 no dearer than the GET it saves.
SMALL_GOAL = 5000.0
BARE_RATIO_GOAL = 0.60
REVALIDATION_GOAL = 1.0
#: (workers, threads) of the matrix; None: the server's default.
MATRIX = ((1, 16), (1, 4), (2, 4), (2, 8))


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
    def __init__(self, root: Path, threads: int | None, workers: int | None = 1,
                 request_log: str = "log/request.log", data: str = "stowage-data", program: str | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = root / "stowage.toml"
        config.write_text(f'[server]\nrequestLog = "{request_log}"\n\n'
                          '[[repositories]]\nname = "bench"\nformat = "raw"\ntype = "hosted"\n'
                          'storage = { writePolicy = "ALLOW" }\n')
        program = program or str(Path(sys.executable).with_name("stowage"))
        command = [program, "--log-level", "WARNING", "serve",
                   "--config", str(config), "--data-dir", str(root / data), "--port", str(self.port)]
        if threads:
            command += ["--threads", str(threads)]
        if workers:
            command += ["--workers", str(workers)]
        self.process = subprocess.Popen(command, env={**os.environ, "STOWAGE_ADMIN_PASSWORD": PASSWORD},
                                        stdout=open(root / f"{data}.log", "wb"), stderr=subprocess.STDOUT)
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
import os, socket, sys, falcon, waitress
body = open(sys.argv[2], "rb").read()
class Small:
    def on_get(self, req, resp):
        resp.data = body
        resp.content_type = "application/octet-stream"
app = falcon.App()
app.add_route("/small.bin", Small())
threads, workers = int(sys.argv[3]), int(sys.argv[4])
sock = socket.create_server(("127.0.0.1", int(sys.argv[1])), backlog=1024)
for _ in range(workers - 1):
    if os.fork() == 0:
        break
waitress.serve(app, sockets=[sock], threads=threads, asyncore_use_poll=True, _quiet=True)
"""


class BareWaitress:
    """The floor for small requests: a falcon app answering 4 KiB from memory on the same waitress."""

    def __init__(self, small: Path, threads: int = 16, workers: int = 1):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # its own process group: the forked workers go with it
        self.process = subprocess.Popen([sys.executable, "-c", BARE_APP, str(self.port), str(small), str(threads),
                                         str(workers)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)
        wait_for(self.url + "/small.bin")

    def file_url(self, name: str) -> str:
        return f"{self.url}/{name}"

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
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
        settle(server)
        results.append(size / MIB / server.put(source, f"up/{label}-{run}.bin"))
    return statistics.median(results)


def settle(server: Stowage | Nginx, timeout: float = 120) -> None:
    """Wait until a Stowage server is idle: the md5/sha1/sha512 of a large upload are computed after its
    response, and would otherwise compete with the next run."""
    if not isinstance(server, Stowage):
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = tree_cpu_seconds(server.process.pid)
        time.sleep(0.5)
        if tree_cpu_seconds(server.process.pid) - before < 0.05:
            return


def small_rps(url: str, seconds: int, runs: int, headers: dict[str, str] | None = None) -> tuple[float, str]:
    if shutil.which("wrk"):
        rates = []
        extra = [a for k, v in (headers or {}).items() for a in ("-H", f"{k}: {v}")]
        for _ in range(runs):
            out = subprocess.run(["wrk", "-t1", "-c16", f"-d{seconds}s", *extra, url], capture_output=True,
                                 text=True, check=True).stdout
            line = next(line for line in out.splitlines() if line.startswith("Requests/sec:"))
            non2xx = [line for line in out.splitlines() if "Non-2xx" in line]
            if non2xx and not headers:  # a revalidation's 304 is what it should get
                raise RuntimeError(f"{url}: {non2xx[0]}")
            rates.append(float(line.split()[1]))
        return statistics.median(rates), "wrk -t1 -c16"
    return (statistics.median(_python_rps(url, seconds, headers or {}) for _ in range(runs)),
            "Python, 16 threads, keep-alive")


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children (worker processes) so far."""
    total = 0.0
    children = Path(f"/proc/{pid}/task/{pid}/children")
    for each in [pid, *(int(c) for c in (children.read_text().split() if children.exists() else ()))]:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def rps_and_cpu(pid: int, url: str, seconds: int, runs: int,
                headers: dict[str, str] | None = None) -> tuple[float, float]:
    """Requests per second, and the server's CPU microseconds per request (on a shared machine the second
    is the steadier figure: other jobs' load lowers the rate, not the work each request takes)."""
    before = tree_cpu_seconds(pid)
    rate = small_rps(url, seconds, runs, headers)[0]
    used = tree_cpu_seconds(pid) - before
    return rate, used / (rate * seconds * runs) * 1e6


def interleaved(measures: dict[str, tuple[int, str, dict[str, str] | None]], seconds: int,
                runs: int) -> dict[str, tuple[float, float]]:
    """:func:`rps_and_cpu` of each (server pid, url, headers), one run of each per round; the medians."""
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in measures}
    for _ in range(runs):
        for name, (pid, url, headers) in measures.items():
            samples[name].append(rps_and_cpu(pid, url, seconds, 1, headers))
    return {name: (statistics.median(r for r, _ in got), statistics.median(c for _, c in got))
            for name, got in samples.items()}


def etag_of(url: str) -> str:
    from urllib.request import urlopen

    with urlopen(url) as response:
        return response.headers["ETag"]


def _python_rps(url: str, seconds: int, headers: dict[str, str]) -> float:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    stop = time.monotonic() + seconds
    counts = [0] * 16

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port)
        while time.monotonic() < stop:
            conn.request("GET", parts.path, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status not in (200, 304):
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
                        help="stowage serve --workers for the transfers (default 1)")
    parser.add_argument("--small-only", action="store_true",
                        help="only the small-GET measurements (defaults, matrix, revalidation)")
    parser.add_argument("--uploads-only", action="store_true",
                        help="only the upload against nginx (quick: use with --big-mib 256 --runs 1)")
    parser.add_argument("--baseline-stowage", metavar="PROGRAM",
                        help="another build's stowage program (e.g. main's .venv/bin/stowage): its upload is "
                             "measured in the same run, for a before/after ratio")
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
    nginx = None
    rows: list[tuple[str, float, float | None, str, str]] = []
    verdicts: list[tuple[str, bool]] = []
    client: list[str] = []
    try:
        big, medium, small = root / "big.bin", root / "medium.bin", root / "small.bin"
        small.write_bytes(os.urandom(4096))
        nginx = Nginx(root, args.nginx_workers)
        shutil.copy(small, nginx.root / "www" / "small.bin")
        if not args.small_only:
            transfers(args, root, big, medium, nginx, rows, verdicts)
        if args.uploads_only:
            client.append("curl")
        else:
            small_suite(args, root, small, nginx, rows, verdicts, client)

        print()
        for name, ok in verdicts:
            print(f"{name:58} {'met' if ok else 'MISSED'}")
        print(f"(nginx worker_processes {args.nginx_workers}; small GETs with {client[0]}; {os.cpu_count()} CPUs; "
              f"median of {args.runs} runs; load average {os.getloadavg()[0]:.1f} at the end)")
        if args.markdown:
            print("\n| measurement | Stowage | reference | ratio | goal |\n|---|---|---|---|---|")
            for label, s, n, unit, goal in rows:
                ratio = f"{s / n:.2f}" if n else ""
                print(f"| {label} | {s:,.0f} {unit} | {f'{n:,.0f} {unit}' if n else ''} | {ratio} | {goal} |")
        return 0
    finally:
        if nginx is not None:
            nginx.stop()
        shutil.rmtree(root, ignore_errors=True)


def transfers(args: argparse.Namespace, root: Path, big: Path, medium: Path, nginx: "Nginx", rows: list,
              verdicts: list) -> None:
    """Downloads and uploads against nginx (one ``stowage serve`` with ``--threads``/``--workers``)."""
    big_size, medium_size = args.big_mib * MIB, args.medium_mib * MIB
    write_file(big, big_size)
    stowage = Stowage(root, args.threads, args.workers, args.request_log)
    baseline = (Stowage(root, args.threads, args.workers, args.request_log, data="baseline-data",
                        program=args.baseline_stowage) if args.baseline_stowage else None)
    try:
        if args.uploads_only:
            upload_rows(args, big, big_size, stowage, baseline, nginx, rows, verdicts)
            return
        write_file(medium, medium_size)
        for name, source in (("big.bin", big), ("medium.bin", medium)):
            stowage.put(source, name)
            shutil.copy(source, nginx.root / "www" / name)

        def measure(key: str, label: str, fn) -> None:
            s, n = fn(stowage), fn(nginx)
            goal = f">= {GOALS[key]:.0%} of nginx"
            rows.append((label, s, n, "MiB/s", goal))
            print(f"{label:52} stowage {s:10.1f} MiB/s nginx {n:10.1f} MiB/s ratio {s / n:5.2f}  ({goal})",
                  flush=True)
            verdicts.append((f"{label} {goal}", s / n >= GOALS[key]))

        measure("download", f"download {args.big_mib} MiB",
                lambda srv: download_mib_s(srv.file_url("big.bin"), big_size, args.runs))
        measure("concurrent", f"{args.clients} concurrent downloads of {args.medium_mib} MiB",
                lambda srv: concurrent_mib_s(srv.file_url("medium.bin"), medium_size, args.clients, args.runs))
        upload_rows(args, big, big_size, stowage, baseline, nginx, rows, verdicts)
    finally:
        stowage.stop()
        if baseline is not None:
            baseline.stop()


def upload_rows(args: argparse.Namespace, big: Path, big_size: int, stowage: Stowage, baseline: Stowage | None,
                nginx: "Nginx", rows: list, verdicts: list) -> None:
    """One upload of the big file, Stowage (and the baseline build) against nginx WebDAV, with the server's
    CPU seconds per GiB during the uploads (the steadier figure on a shared machine; each Stowage upload
    starts once the server is idle, its background checksums of the previous one done)."""
    label = f"upload {args.big_mib} MiB (stowage: sha256 + fsync)"
    goal = f">= {GOALS['upload']:.0%} of nginx"
    n = upload_mib_s(nginx, big, big_size, args.runs, "nginx")
    servers = [("stowage", stowage)] + ([("baseline", baseline)] if baseline is not None else [])
    for name, server in servers:
        cpu_seconds = 0.0
        rates = []
        for run in range(args.runs):
            restamp(big, run)
            settle(server)
            before = tree_cpu_seconds(server.process.pid)
            rates.append(big_size / MIB / server.put(big, f"up/{name}-{run}.bin"))
            cpu_seconds += tree_cpu_seconds(server.process.pid) - before
        s = statistics.median(rates)
        cpu = cpu_seconds / (args.runs * big_size / 1024**3)
        shown = label if name == "stowage" else f"{label}, baseline build"
        rows.append((shown, s, n, "MiB/s", goal))
        print(f"{shown:52} {name} {s:10.1f} MiB/s nginx {n:10.1f} MiB/s ratio {s / n:5.2f}  "
              f"server CPU {cpu:5.2f} s/GiB  ({goal})", flush=True)
        if name == "stowage":
            verdicts.append((f"{label} {goal}", s / n >= GOALS["upload"]))


def small_suite(args: argparse.Namespace, root: Path, small: Path, nginx: "Nginx", rows: list, verdicts: list,
                client: list) -> None:
    """4 KiB GETs: ``stowage serve`` with no tuning flags, then the workers x threads matrix, each against
    the bare falcon + waitress app with the same processes and threads; and 304 revalidations."""
    from stowage.settings import ServerSettings
    from stowage.workers import default_workers

    defaults = (default_workers(), ServerSettings().threads)
    rate, how = small_rps(nginx.file_url("small.bin"), args.seconds, args.runs)
    client.append(how)
    print(f"{'4 KiB GETs, nginx':52} {rate:10.1f} req/s", flush=True)
    rows.append(("4 KiB GETs, nginx", rate, None, "req/s", "(reference)"))
    for index, config in enumerate([None, *MATRIX]):
        workers, threads = config or (None, None)
        label = (f"defaults ({defaults[0]} workers x {defaults[1]} threads)" if config is None
                 else f"--workers {workers} --threads {threads}")
        stowage = Stowage(root, threads, workers, args.request_log, data=f"small-{index}")
        bare = None
        try:
            stowage.put(small, "small.bin")
            url = stowage.file_url("small.bin")
            bare = BareWaitress(small, *(reversed(config) if config else (defaults[1], defaults[0])))
            small_rps(url, 2, 1)  # warm-up: every worker started and its caches filled
            small_rps(bare.file_url("small.bin"), 2, 1)
            # Both servers stay up and the rounds alternate between them: on a shared machine, load that
            # comes and goes then weighs on both sides of each ratio alike.
            measures = {"get": (stowage.process.pid, url, None),
                        "floor": (bare.process.pid, bare.file_url("small.bin"), None)}
            if config is None:
                measures["revalidation"] = (stowage.process.pid, url, {"If-None-Match": etag_of(url)})
            results = interleaved(measures, args.seconds, args.runs)
        finally:
            stowage.stop()
            if bare is not None:
                bare.stop()
        (get, get_cpu), (floor, floor_cpu) = results["get"], results["floor"]
        revalidation, revalidation_cpu = results.get("revalidation", (0.0, 0.0))
        print(f"{'  server CPU per request':52} stowage {get_cpu:8.0f} us   bare {floor_cpu:8.0f} us   "
              f"bare/stowage {floor_cpu / get_cpu:5.2f}", flush=True)
        rows.append((f"server CPU per 4 KiB GET (us), {label}", get_cpu, floor_cpu, "us", "(bare / Stowage)"))
        goal = f">= {BARE_RATIO_GOAL:.0%} of the bare app"
        print(f"{'4 KiB GETs, ' + label:52} stowage {get:10.1f} req/s bare {floor:10.1f} req/s ratio "
              f"{get / floor:5.2f}  ({goal})", flush=True)
        rows.append((f"4 KiB GETs, {label}", get, floor, "req/s", goal))
        verdicts.append((f"4 KiB GETs, {label}: {goal}", get / floor >= BARE_RATIO_GOAL))
        verdicts.append((f"  the same in server CPU per request (bare / Stowage {floor_cpu / get_cpu:.2f})",
                         floor_cpu / get_cpu >= BARE_RATIO_GOAL))
        if config is None:
            verdicts.append((f"4 KiB GETs with defaults >= {SMALL_GOAL:.0f}/s ({get:.0f}/s)", get >= SMALL_GOAL))
            goal = "costs no more than the GET"
            print(f"{'If-None-Match -> 304, defaults':52} stowage {revalidation:10.1f} req/s GET {get:10.1f} req/s "
                  f"ratio {revalidation / get:5.2f}; CPU {revalidation_cpu:.0f} vs {get_cpu:.0f} us  ({goal})",
                  flush=True)
            rows.append(("If-None-Match -> 304, defaults", revalidation, get, "req/s", goal))
            rows.append(("server CPU per 304 vs per GET (us)", revalidation_cpu, get_cpu, "us", goal))
            verdicts.append((f"304 revalidation {goal} (server CPU per request)",
                             revalidation_cpu <= get_cpu * REVALIDATION_GOAL))


if __name__ == "__main__":
    sys.exit(main())

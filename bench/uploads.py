#!/usr/bin/env python3
"""Large package uploads with the real clients: ``twine upload`` of a wheel and ``npm publish`` of a package,
each of ``--mib`` MiB, against this build's ``stowage serve`` and (``--baseline-stowage``) another build's,
in the same run.

    .venv/bin/python bench/uploads.py [--mib 50] [--runs 3] [--baseline-stowage /work/main/.venv/bin/stowage]

Issue 16's goal: with request bodies streamed, a 50 MiB twine upload and npm publish are no slower than
before, and each server stays under 150 MB RSS. Runs alternate between the builds (each run uploads a new
version, new random bytes); the times are medians. Needs twine (next to this Python) and npm.
This is a benchmark, not a test: compare the ratios of one run.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "plugins" / "pypi" / "tests"))

from pypi_kit import make_wheel  # noqa: E402

MIB = 1 << 20
PASSWORD = "bench-password"
RSS_GOAL_MB = 150
CONFIG = """
[[repositories]]
name = "pypi"
format = "pypi"
type = "hosted"
storage = { writePolicy = "ALLOW" }

[[repositories]]
name = "npm"
format = "npm"
type = "hosted"
storage = { writePolicy = "ALLOW" }
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, root: Path, name: str, program: str):
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = root / f"{name}.toml"
        config.write_text(CONFIG)
        self.process = subprocess.Popen(
            [program, "--log-level", "WARNING", "serve", "--config", str(config), "--data-dir", str(root / name),
             "--port", str(self.port), "--workers", "1"],
            env={**os.environ, "STOWAGE_ADMIN_PASSWORD": PASSWORD}, stdout=open(root / f"{name}.log", "wb"),
            stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{name} did not start")

    def max_rss_mb(self) -> float:
        """The largest peak RSS (VmHWM) over the server's processes."""
        pids = [self.process.pid]
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        if children.exists():
            pids += [int(p) for p in children.read_text().split()]
        peak = 0
        for pid in pids:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
            except FileNotFoundError:
                continue
        return peak / 1024

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(60)


def twine_seconds(server: Server, wheel: Path) -> float:
    twine = str(Path(sys.executable).with_name("twine"))
    started = time.perf_counter()
    subprocess.run([twine, "upload", "--non-interactive", "--disable-progress-bar", "--repository-url",
                    f"{server.url}/repository/pypi/", "-u", "admin", "-p", PASSWORD, str(wheel)],
                   check=True, capture_output=True, timeout=600)
    return time.perf_counter() - started


def npm_seconds(server: Server, package: Path, home: Path) -> float:
    registry = f"{server.url}/repository/npm/"
    home.mkdir(parents=True, exist_ok=True)
    auth = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    (home / ".npmrc").write_text(f"//127.0.0.1:{server.port}/repository/npm/:_auth={auth}\n")
    env = {k: v for k, v in os.environ.items() if not k.lower().startswith("npm_config_")}
    env.update(HOME=str(home), npm_config_userconfig=str(home / ".npmrc"), npm_config_cache=str(home / "cache"),
               npm_config_update_notifier="false", npm_config_fund="false", npm_config_loglevel="error")
    started = time.perf_counter()
    subprocess.run(["npm", "publish", "--registry", registry], cwd=package, env=env, check=True,
                   capture_output=True, timeout=600)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline-stowage", metavar="PROGRAM", help="another build's stowage program")
    parser.add_argument("--only", choices=("twine", "npm"), help="one client only")
    args = parser.parse_args()
    if not shutil.which("npm"):
        print("npm is required", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="stowage-uploads-"))
    servers: list[Server] = []
    try:
        servers.append(Server(root, "stowage", str(Path(sys.executable).with_name("stowage"))))
        if args.baseline_stowage:
            servers.append(Server(root, "baseline", args.baseline_stowage))
        times: dict[tuple[str, str], list[float]] = {}
        package = root / "package"
        package.mkdir()
        for run in range(args.runs):
            wheel = make_wheel(root, "bench-big", f"1.0.{run}",
                               extra_files={"bench_big/payload.bin": os.urandom(args.mib * MIB)})
            (package / "payload.bin").write_bytes(os.urandom(args.mib * MIB))
            for server in servers if run % 2 == 0 else reversed(servers):
                version = f"1.0.{run}"
                (package / "package.json").write_text(json.dumps({"name": "bench-big", "version": version}))
                if args.only != "npm":
                    times.setdefault((server.name, "twine"), []).append(twine_seconds(server, wheel))
                if args.only != "twine":
                    times.setdefault((server.name, "npm"), []).append(npm_seconds(server, package, root / "home"))
            wheel.unlink()
        verdicts = []
        for client in [c for c in ("twine", "npm") if args.only in (None, c)]:
            ours = statistics.median(times[("stowage", client)])
            line = f"{client} {args.mib} MiB: stowage {ours:6.2f} s"
            if args.baseline_stowage:
                before = statistics.median(times[("baseline", client)])
                line += f"  baseline {before:6.2f} s  ratio {ours / before:5.2f} (goal <= 1.00, no slower)"
                verdicts.append((f"{client} upload of {args.mib} MiB no slower than the baseline", ours <= before))
            print(line, flush=True)
            print("    each run: " + "; ".join(f"{name} " + " ".join(f"{t:.2f}" for t in times[(name, client)])
                                         for name in ("stowage", "baseline") if (name, client) in times))
        for server in servers:
            rss = server.max_rss_mb()
            print(f"{server.name} peak RSS {rss:.0f} MB (goal < {RSS_GOAL_MB} MB)")
            verdicts.append((f"{server.name} RSS < {RSS_GOAL_MB} MB", rss < RSS_GOAL_MB))
        print()
        for name, ok in verdicts:
            print(f"{name:58} {'met' if ok else 'MISSED'}")
        print(f"(median of {args.runs} runs, alternating builds; load average {os.getloadavg()[0]:.1f} at the end)")
        return 0
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

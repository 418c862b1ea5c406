"""npm benchmark: Stowage against verdaccio on this machine, in one run; prints ratios.

Measures (both registries serve the same packages, published over HTTP with the same documents):
- the hot packument rate of a package with --versions versions, full and abbreviated (gzip accepted;
  ``wrk``, 16 keep-alive connections, see ``rates.py``; medians of --rounds runs taken in turn with the
  other registry's) and the server's CPU per request; issue 16's goal is Stowage ahead of verdaccio on
  both (printed met/MISSED);
- bytes on the wire for each document;
- ``npm install`` wall time of a project with 50 dependencies, servers warm, npm cache cold.

``--quick`` (under 2 minutes): the packuments of a 100-version package, 3 s a run, 2 rounds, no ``npm install``.
Stowage runs as ``stowage serve`` with no tuning flags and serves reads through a group (``npm-group``,
one hosted member), as npm clients are pointed at; verdaccio serves its own storage.

verdaccio is not a Python dependency; install it once with
``npm install --prefix bench/.verdaccio verdaccio@5 --no-audit --no-fund`` (verdaccio 6 needs Node 22; if the registry lacks the
``node-fetch@cjs`` tag, add ``"overrides": {"node-fetch": "2.7.0"}`` to bench/.verdaccio/package.json)
or point ``VERDACCIO`` at its binary. Run: ``.venv/bin/python bench/npm.py [--quick] [--append docs/performance.md]``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import urllib3

from rates import Rate, compare, interleaved, measure, print_verdicts, require_tools

ROOT = Path(__file__).resolve().parent.parent
VERSIONS = 500
DEPENDENCIES = 50
SECONDS = 5.0
CORGI = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, timeout: float = 60) -> None:
    http = urllib3.PoolManager()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if http.request("GET", url, timeout=2, retries=False).status < 500:
                return
        except urllib3.exceptions.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def tarball(name: str, version: str, dependencies: dict[str, str]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for path, text in (("package/package.json", json.dumps({"name": name, "version": version,
                                                                 "dependencies": dependencies})),
                           ("package/index.js", f"module.exports = {json.dumps(version)};\n")):
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def publish_document(name: str, version: str, dependencies: dict[str, str]) -> bytes:
    data = tarball(name, version, dependencies)
    filename = f"{name.rpartition('/')[2]}-{version}.tgz"
    manifest = {"name": name, "version": version, "description": f"{name} benchmark package " * 4,
                "dependencies": dependencies, "readme": "# readme\n" + "lorem ipsum " * 200,
                "scripts": {"test": "true"}, "license": "MIT",
                "dist": {"integrity": "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode(),
                         "shasum": hashlib.sha1(data).hexdigest(), "tarball": f"http://x/{name}/-/{filename}"}}
    return json.dumps({"_id": name, "name": name, "description": manifest["description"],
                       "dist-tags": {"latest": version}, "versions": {version: manifest},
                       "readme": manifest["readme"],
                       "_attachments": {filename: {"content_type": "application/octet-stream",
                                                   "data": base64.b64encode(data).decode(),
                                                   "length": len(data)}}}).encode()


class Registry:
    def __init__(self, name: str, publish_url: str, read_url: str, auth: dict[str, str], process):
        self.name, self.publish_url, self.read_url, self.auth, self.process = (name, publish_url, read_url, auth,
                                                                              process)

    def publish(self, http: urllib3.PoolManager, name: str, version: str, deps: dict[str, str]) -> None:
        escaped = name.replace("/", "%2f")
        response = http.request("PUT", f"{self.publish_url}/{escaped}", body=publish_document(name, version, deps),
                                headers={**self.auth, "Content-Type": "application/json"})
        if response.status not in (200, 201):
            raise RuntimeError(f"{self.name}: publish {name}@{version}: {response.status} {response.data[:200]!r}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_stowage(work: Path) -> Registry:
    port = free_port()
    config = work / "stowage.toml"
    config.write_text(f"""
[server]
host = "127.0.0.1"
port = {port}
anonymousAccess = true

[[repositories]]
name = "npm-hosted"
format = "npm"
type = "hosted"

[[repositories]]
name = "npm-group"
format = "npm"
type = "group"
group = {{ memberNames = ["npm-hosted"] }}
""")
    env = {**os.environ, "STOWAGE_ADMIN_PASSWORD": "bench-admin"}
    process = subprocess.Popen([str(ROOT / ".venv/bin/stowage"), "serve", "--config", str(config), "--data-dir",
                                str(work / "stowage-data"), "--port", str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/repository"
    wait_for(f"{base}/npm-group/-/ping")
    auth = {"Authorization": "Basic " + base64.b64encode(b"admin:bench-admin").decode()}
    return Registry("stowage", f"{base}/npm-hosted", f"{base}/npm-group", auth, process)


def verdaccio_binary() -> str:
    for candidate in (os.environ.get("VERDACCIO"), ROOT / "bench/.verdaccio/node_modules/.bin/verdaccio",
                      "/tmp/verdaccio-install/node_modules/.bin/verdaccio", shutil.which("verdaccio")):
        if candidate and Path(candidate).exists():
            return str(candidate)
    sys.exit("verdaccio not found: see this script's docstring for how to install it")


def start_verdaccio(work: Path) -> Registry:
    port = free_port()
    home = work / "verdaccio"
    home.mkdir()
    (home / "config.yaml").write_text(f"""
storage: {home}/storage
auth:
  htpasswd:
    file: {home}/htpasswd
    max_users: 100
uplinks: {{}}
packages:
  '**':
    access: $all
    publish: $authenticated
max_body_size: 200mb
listen: 127.0.0.1:{port}
log: {{type: stdout, format: pretty, level: error}}
""")
    process = subprocess.Popen([verdaccio_binary(), "--config", str(home / "config.yaml")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    wait_for(f"{base}/-/ping")
    http = urllib3.PoolManager()
    response = http.request("PUT", f"{base}/-/user/org.couchdb.user:bench",
                            body=json.dumps({"name": "bench", "password": "bench-pass-1"}).encode(),
                            headers={"Content-Type": "application/json"})
    token = json.loads(response.data)["token"]
    return Registry("verdaccio", base, base, {"Authorization": f"Bearer {token}"}, process)


def npm_install_seconds(registry: Registry, work: Path, runs: int = 3) -> float:
    times = []
    for run in range(runs + 1):  # the first run warms the server (and, for a group, its merged documents)
        project = work / f"project-{registry.name}-{run}"
        project.mkdir()
        (project / "package.json").write_text(json.dumps({
            "name": "bench-project", "version": "1.0.0",
            "dependencies": {f"bench-dep-{i}": "^1.0.0" for i in range(DEPENDENCIES)}}))
        env = {k: v for k, v in os.environ.items() if not k.lower().startswith("npm_config_")}
        env.update(HOME=str(project), npm_config_cache=str(project / ".cache"), npm_config_audit="false",
                   npm_config_fund="false", npm_config_update_notifier="false")
        started = time.monotonic()
        subprocess.run(["npm", "install", "--registry", registry.read_url + "/", "--no-audit", "--no-fund"],
                       cwd=project, env=env, check=True, capture_output=True)
        if run:
            times.append(time.monotonic() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--append", type=Path, help="append a results section to this markdown file")
    parser.add_argument("--versions", type=int, default=VERSIONS, help="versions of the measured package")
    parser.add_argument("--seconds", type=float, help=f"length of each rate run ({SECONDS:.0f}; --quick: 3)")
    parser.add_argument("--rounds", type=int,
                        help="packument rate runs per registry, taken in turn with the other's (medians; 3, "
                             "--quick: 2)")
    parser.add_argument("--quick", action="store_true",
                        help="packuments of a 100-version package only, 3 s each, no npm install (< 2 minutes)")
    args = parser.parse_args()
    if args.quick:
        args.versions = 100
    if args.seconds is None:
        args.seconds = 3.0 if args.quick else SECONDS
    if args.rounds is None:
        args.rounds = 2 if args.quick else 3
    require_tools()
    work = Path(tempfile.mkdtemp(prefix="stowage-npm-bench-"))
    registries = [start_stowage(work), start_verdaccio(work)]
    results: dict[str, dict[str, float]] = {}
    rates: dict[str, dict[str, Rate]] = {}
    try:
        http = urllib3.PoolManager(maxsize=8)
        for registry in registries:
            started = time.monotonic()
            for i in range(args.versions):
                registry.publish(http, "bench-big", f"1.0.{i}", {"bench-dep-0": "^1.0.0"})
            for i in range(DEPENDENCIES if not args.quick else 1):
                registry.publish(http, f"bench-dep-{i}", "1.0.0", {})
            results[registry.name] = {f"publish {args.versions} versions (s)": time.monotonic() - started}
        for kind, accept in (("full", "application/json"), ("abbreviated", CORGI)):
            rates[kind] = interleaved({r.name: measure(r.name, f"{r.read_url}/bench-big", r.process.pid,
                                                       headers={"Accept": accept, "Accept-Encoding": "gzip"},
                                                       seconds=args.seconds) for r in registries}, args.rounds)
        for registry in registries:
            full, corgi = rates["full"][registry.name], rates["abbreviated"][registry.name]
            results[registry.name].update({
                "full packument req/s": full.rps, "full packument CPU us/req": full.cpu_us,
                "full packument bytes (gzip)": full.size, "abbreviated req/s": corgi.rps,
                "abbreviated CPU us/req": corgi.cpu_us, "abbreviated bytes (gzip)": corgi.size})
            if not args.quick:
                results[registry.name]["npm install 50 deps (s)"] = npm_install_seconds(registry, work)
    finally:
        for registry in registries:
            registry.stop()
        shutil.rmtree(work, ignore_errors=True)

    higher_is_better = {"full packument req/s", "abbreviated req/s"}
    lines = ["| measure | Stowage | verdaccio | Stowage advantage |", "|---|---|---|---|"]
    for row in results["stowage"]:
        ours, theirs = results["stowage"][row], results["verdaccio"][row]
        ratio = ours / theirs if row in higher_is_better else theirs / ours
        lines.append(f"| {row} | {ours:,.2f} | {theirs:,.2f} | {ratio:.2f}x |")
    table = "\n".join(lines)
    print(table)
    # issue 16: hot packuments (full and abbreviated) ahead of verdaccio in the same run
    verdicts = []
    for kind in ("full", "abbreviated"):
        verdicts += compare(f"{kind} packument ({args.versions} versions)", rates[kind]["stowage"],
                            rates[kind]["verdaccio"], 1.0)
    print_verdicts(verdicts)
    if args.append:
        with args.append.open("a") as out:
            out.write(f"\n## npm (bench/npm.py, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, loopback)\n\n"
                      f"Package with {args.versions} versions; wrk, 16 connections for {args.seconds:.0f} s per "
                      f"measure, median of {args.rounds} rounds; `npm install` of {DEPENDENCIES} dependencies with a cold npm cache against a "
                      f"warm server (median of 3). Stowage serves through `npm-group` (one hosted member), "
                      f"verdaccio directly. Advantage > 1 means Stowage is ahead.\n\n{table}\n")


if __name__ == "__main__":
    main()

"""npm benchmark: Stowage against verdaccio on this machine, in one run; prints ratios.

Measures (both registries serve the same packages, published over HTTP with the same documents):
- packument requests/s for a package with 500 versions, full and abbreviated (gzip accepted), 8 clients;
- bytes on the wire for each document;
- ``npm install`` wall time of a project with 50 dependencies, servers warm, npm cache cold.

verdaccio is not a Python dependency; install it once with
``npm install --prefix bench/.verdaccio verdaccio@5 --no-audit --no-fund`` (verdaccio 6 needs Node 22; if the registry lacks the
``node-fetch@cjs`` tag, add ``"overrides": {"node-fetch": "2.7.0"}`` to bench/.verdaccio/package.json)
or point ``VERDACCIO`` at its binary. Run: ``.venv/bin/python bench/npm.py [--append docs/performance.md]``.
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
import threading
import time
from pathlib import Path

import urllib3

ROOT = Path(__file__).resolve().parent.parent
VERSIONS = 500
DEPENDENCIES = 50
CLIENTS = 8
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
                                str(work / "stowage-data"), "--port", str(port), "--threads", "16"], env=env,
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


def hammer(url: str, headers: dict[str, str]) -> tuple[float, int]:
    """Requests/s over SECONDS with CLIENTS threads; and the body size on the wire."""
    http = urllib3.PoolManager(maxsize=CLIENTS)
    first = http.request("GET", url, headers=headers, decode_content=False)
    assert first.status == 200, (url, first.status)
    size = len(first.data)
    counts = [0] * CLIENTS
    stop = time.monotonic() + SECONDS

    def worker(i: int) -> None:
        while time.monotonic() < stop:
            response = http.request("GET", url, headers=headers, decode_content=False)
            if response.status != 200:
                raise RuntimeError(f"{url}: {response.status}")
            counts[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(CLIENTS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.monotonic() - started), size


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
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="stowage-npm-bench-"))
    registries = [start_stowage(work), start_verdaccio(work)]
    results: dict[str, dict[str, float]] = {}
    try:
        http = urllib3.PoolManager(maxsize=8)
        for registry in registries:
            started = time.monotonic()
            for i in range(VERSIONS):
                registry.publish(http, "bench-big", f"1.0.{i}", {"bench-dep-0": "^1.0.0"})
            for i in range(DEPENDENCIES):
                registry.publish(http, f"bench-dep-{i}", "1.0.0", {})
            publish_seconds = time.monotonic() - started
            url = f"{registry.read_url}/bench-big"
            full_rps, full_bytes = hammer(url, {"Accept": "application/json", "Accept-Encoding": "gzip"})
            corgi_rps, corgi_bytes = hammer(url, {"Accept": CORGI, "Accept-Encoding": "gzip"})
            install = npm_install_seconds(registry, work)
            results[registry.name] = {"publish 550 versions (s)": publish_seconds,
                                      "full packument req/s": full_rps, "full packument bytes (gzip)": full_bytes,
                                      "abbreviated req/s": corgi_rps, "abbreviated bytes (gzip)": corgi_bytes,
                                      "npm install 50 deps (s)": install}
    finally:
        for registry in registries:
            registry.stop()
        shutil.rmtree(work, ignore_errors=True)

    lower_is_better = {"publish 550 versions (s)", "full packument bytes (gzip)", "abbreviated bytes (gzip)",
                       "npm install 50 deps (s)"}
    lines = ["| measure | Stowage | verdaccio | Stowage advantage |", "|---|---|---|---|"]
    for measure in results["stowage"]:
        ours, theirs = results["stowage"][measure], results["verdaccio"][measure]
        ratio = theirs / ours if measure in lower_is_better else ours / theirs
        lines.append(f"| {measure} | {ours:,.2f} | {theirs:,.2f} | {ratio:.2f}x |")
    table = "\n".join(lines)
    print(table)
    # issue 16: hot packuments (full and abbreviated) ahead of verdaccio in the same run
    for measure in ("full packument req/s", "abbreviated req/s"):
        ratio = results["stowage"][measure] / results["verdaccio"][measure]
        print(f"{measure} ahead of verdaccio (ratio {ratio:.2f} > 1): {'met' if ratio > 1 else 'MISSED'}")
    if args.append:
        with args.append.open("a") as out:
            out.write(f"\n## npm (bench/npm.py, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, loopback)\n\n"
                      f"Package with {VERSIONS} versions; {CLIENTS} concurrent clients for {SECONDS:.0f} s per "
                      f"measure; `npm install` of {DEPENDENCIES} dependencies with a cold npm cache against a "
                      f"warm server (median of 3). Stowage serves through `npm-group` (one hosted member), "
                      f"verdaccio directly. Advantage > 1 means Stowage is ahead.\n\n{table}\n")


if __name__ == "__main__":
    main()

"""PyPI benchmark: Stowage against pypiserver and devpi-server, in one run, on this machine (loopback only).

Measures, for each server:
  (a) the hot rate (requests/s, ``wrk`` with 16 keep-alive connections for --seconds, medians of --rounds
      runs taken in turn, see ``rates.py``) and the server's CPU per request of a project page with
      --files files and of the root index with --projects projects, as pip asks for them (PEP 691 JSON
      preferred, HTML accepted, gzip accepted; each server answers in the form it prefers);
  (b) wall time of ``pip download`` of 20 wheels (20 projects) from a cold client cache (median of 3);
  (c) wall time of ``twine upload`` of 100 wheels (median of --twine-rounds runs, new wheels each run).
and prints each peer's numbers with the ratio Stowage/peer (>1 means Stowage is better), then issue 16's
goal for (a): Stowage ahead of every peer (met/MISSED), by rate and by server CPU per request.
``--quick`` (under 2 minutes): (a) only, on a 20-file page and a 30-project root (devpi takes ~1 s an
upload), 2 s a run, 2 rounds.

Setup (not part of CI; the peers live in their own virtualenv so their dependencies stay out of ours):

    python3 -m venv .bench-venv
    .bench-venv/bin/pip install devpi-server devpi-client "pypiserver[cache]" waitress
    ./dev install
    .venv/bin/python bench/pypi.py --peers-venv .bench-venv          # full size: ~5-10 minutes
    .venv/bin/python bench/pypi.py --peers-venv .bench-venv --quick     # the metadata GETs alone, < 2 min

Data is loaded by concurrent HTTP uploads (4 at a time) to Stowage and devpi, and by dropping the files in
pypiserver's directory.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import hashlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import urllib3

from rates import Rate, compare, interleaved, measure, print_verdicts, require_tools

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
PASSWORD = "bench-password-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_wheel(directory: Path, name: str, version: str, payload: int = 2000) -> Path:
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    files = {
        f"{dist}/__init__.py": (f"VERSION = {version!r}\n# " + "x" * payload + "\n").encode(),
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nRequires-Python: >=3.8\n\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = directory / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in files.items():
            archive.writestr(member, data)
    return path


def wait_for(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if urllib3.request("GET", url, timeout=2, retries=False).status < 500:
                return
        except urllib3.exceptions.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def clean_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "TWINE_"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", HOME=str(tmp))
    return env


def multipart_upload(url: str, path: Path, auth: tuple[str, str] | None) -> int:
    """One legacy-API upload, as twine sends it (used to load data into a peer concurrently)."""
    name, version = path.name.split("-")[:2]
    fields = {":action": "file_upload", "protocol_version": "1", "name": name, "version": version,
              "filetype": "bdist_wheel", "pyversion": "py3", "metadata_version": "2.1",
              "sha256_digest": hashlib.sha256(path.read_bytes()).hexdigest(),
              "content": (path.name, path.read_bytes(), "application/octet-stream")}
    headers = urllib3.make_headers(basic_auth=f"{auth[0]}:{auth[1]}") if auth else {}
    body, content_type = urllib3.encode_multipart_formdata(fields)
    return urllib3.request("POST", url, body=body, headers={**headers, "Content-Type": content_type},
                           timeout=120, retries=False).status


# -- servers -------------------------------------------------------------------------------------------

class Peer:
    name = ""
    process: subprocess.Popen | None = None

    def __init__(self, workdir: Path, peers_bin: Path):
        self.workdir = workdir
        self.peers_bin = peers_bin
        self.port = free_port()
        self.workdir.mkdir(parents=True, exist_ok=True)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()

    # index_url, upload_url, auth, project_page(path), root(path) defined by subclasses


class StowagePeer(Peer):
    name = "stowage"

    def setup(self, repo: str = "pypi-hosted") -> None:
        self.config = self.workdir / "stowage.toml"
        self.config.write_text(f'[server]\nhost = "127.0.0.1"\nport = {self.port}\ndataDir = "data"\n'
                               f'[[repositories]]\nname = "{repo}"\nformat = "pypi"\ntype = "hosted"\n'
                               f'storage = {{ writePolicy = "ALLOW" }}\n')
        self.index_url = f"http://127.0.0.1:{self.port}/repository/{repo}/simple/"
        self.upload_url = f"http://127.0.0.1:{self.port}/repository/{repo}/"
        self.auth = ("admin", PASSWORD)
        self.repo = repo

    def preload(self, wheels: list[Path]) -> None:
        """Load over HTTP as twine uploads (validation, metadata extraction, fsync and all), 4 at a time."""
        upload_all(self.upload_url, wheels, self.auth)

    def start(self) -> None:
        env = dict(os.environ, STOWAGE_ADMIN_PASSWORD=PASSWORD)
        self.process = subprocess.Popen([str(VENV_BIN / "stowage"), "serve", "--config", str(self.config)],
                                        cwd=self.workdir, env=env, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        wait_for(self.index_url)


class PypiserverPeer(Peer):
    name = "pypiserver"

    def setup(self) -> None:
        self.packages = self.workdir / "packages"
        self.packages.mkdir(exist_ok=True)
        self.index_url = f"http://127.0.0.1:{self.port}/simple/"
        self.upload_url = f"http://127.0.0.1:{self.port}/"
        self.auth = None

    def preload(self, wheels: list[Path]) -> None:
        for wheel in wheels:
            shutil.copy(wheel, self.packages / wheel.name)

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(self.peers_bin / "pypi-server"), "run", "-i", "127.0.0.1", "-p", str(self.port), "-a", ".", "-P", ".",
             "--hash-algo", "sha256", "--disable-fallback", "--backend", "cached-dir",
             str(self.packages)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.index_url)


class DevpiPeer(Peer):
    name = "devpi"

    def setup(self) -> None:
        self.serverdir = self.workdir / "server"
        subprocess.run([str(self.peers_bin / "devpi-init"), "--serverdir", str(self.serverdir),
                        "--root-passwd", PASSWORD, "--no-root-pypi"], check=True, capture_output=True)
        self.index_url = f"http://127.0.0.1:{self.port}/root/bench/+simple/"
        self.upload_url = f"http://127.0.0.1:{self.port}/root/bench/"
        self.auth = ("root", PASSWORD)

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(self.peers_bin / "devpi-server"), "--serverdir", str(self.serverdir), "--host", "127.0.0.1",
             "--port", str(self.port), "--offline-mode"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(f"http://127.0.0.1:{self.port}/+api")
        client_dir = self.workdir / "client"
        base = [str(self.peers_bin / "devpi"), "--clientdir", str(client_dir)]
        subprocess.run(base + ["use", f"http://127.0.0.1:{self.port}"], check=True, capture_output=True)
        subprocess.run(base + ["login", "root", "--password", PASSWORD], check=True, capture_output=True)
        if urllib3.request("GET", self.upload_url, headers={"Accept": "application/json"}).status != 200:
            subprocess.run(base + ["index", "-c", "bench", "bases=", "volatile=True"], check=True, capture_output=True)

    def preload(self, wheels: list[Path]) -> None:
        upload_all(self.upload_url, wheels, self.auth)


def upload_all(url: str, wheels: list[Path], auth: tuple[str, str] | None) -> None:
    def upload(wheel: Path) -> int:
        for _ in range(5):  # devpi answers 500 on some concurrent writes to one index: retry those
            status = multipart_upload(url, wheel, auth)
            if status != 500:
                return status
            time.sleep(0.2)
        return status

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(upload, wheels))
    bad = [s for s in statuses if s != 200]
    if bad:
        raise RuntimeError(f"{url} refused {len(bad)} uploads: {set(bad)}")


# -- measurements --------------------------------------------------------------------------------------

def pip_download(index_url: str, projects: list[str], tmp: Path, rounds: int = 3) -> float:
    times = []
    for i in range(rounds):
        target = tmp / f"pip-{i}"
        cache = tmp / f"pip-cache-{i}"
        env = clean_env(tmp)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--cache-dir", str(cache), "-d",
                        str(target), "--index-url", index_url, *projects], env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
        if len(list(target.iterdir())) != len(projects):
            raise RuntimeError("pip download did not fetch every wheel")
        shutil.rmtree(target)
        shutil.rmtree(cache, ignore_errors=True)
    return statistics.median(times)


def twine_upload(url: str, wheels: list[Path], auth: tuple[str, str] | None, tmp: Path) -> float:
    user, password = auth or ("anonymous", "anonymous")
    started = time.perf_counter()
    subprocess.run([str(VENV_BIN / "twine"), "upload", "--non-interactive", "--disable-progress-bar",
                    "--repository-url", url, "-u", user, "-p", password, *map(str, wheels)],
                   env=clean_env(tmp), check=True, capture_output=True)
    return time.perf_counter() - started


#: what pip 24 sends for a simple page (PEP 691: JSON preferred, HTML accepted)
PIP_HEADERS = {"Accept": "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
                         "text/html; q=0.01", "Accept-Encoding": "gzip, deflate"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peers-venv", type=Path, default=ROOT / ".bench-venv",
                        help="virtualenv with pypiserver, devpi-server and devpi-client")
    parser.add_argument("--projects", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=1_000)
    parser.add_argument("--seconds", type=float, help="length of each rate run (5; --quick: 2)")
    parser.add_argument("--twine-rounds", type=int, default=3, help="twine runs of 100 new wheels (median)")
    parser.add_argument("--rounds", type=int,
                        help="page rate runs per server, taken in turn with the others' (medians; 3, --quick: 2)")
    parser.add_argument("--quick", action="store_true",
                        help="the hot simple pages only (20 files, 30 projects, 3 s each): under 2 minutes")
    parser.add_argument("--only", nargs="*", default=["stowage", "pypiserver", "devpi"])
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.quick:
        args.projects, args.files, args.twine_rounds = 30, 20, 0
    if args.seconds is None:
        args.seconds = 2.0 if args.quick else 5.0
    if args.rounds is None:
        args.rounds = 2 if args.quick else 3
    require_tools()
    peers_bin = args.peers_venv / "bin"

    with tempfile.TemporaryDirectory(prefix="stowage-bench-pypi-") as tmpdir:
        tmp = Path(tmpdir)
        wheel_dir = tmp / "wheels"
        wheel_dir.mkdir()
        print(f"building {args.files} + {args.projects} + 20 + {100 * args.twine_rounds} wheels...", flush=True)
        big = [make_wheel(wheel_dir, "bigproject", f"0.{i // 100}.{i % 100}") for i in range(args.files)]
        many_dir = wheel_dir / "many"
        many_dir.mkdir()
        many = [make_wheel(many_dir, f"proj{i:05d}", "1.0", payload=10) for i in range(args.projects)]
        twenty = [f"proj{i:05d}" for i in range(20)]
        upload_dir = wheel_dir / "upload"
        upload_dir.mkdir()
        uploads = [[make_wheel(upload_dir, f"uploaded{r}x{i:03d}", "1.0") for i in range(100)]
                   for r in range(args.twine_rounds)]

        results: dict[str, dict[str, float]] = {name: {} for name in args.only}
        classes = {"stowage": StowagePeer, "pypiserver": PypiserverPeer, "devpi": DevpiPeer}
        peers: dict[str, Peer] = {}
        try:
            for name in args.only:  # all up at once: their rates are measured in turn (rates.interleaved)
                peer = peers[name] = classes[name](tmp / name, peers_bin)
                print(f"[{name}] loading data...", flush=True)
                started = time.perf_counter()
                peer.setup()
                if name == "pypiserver":  # files dropped in its directory, read at start
                    peer.preload(big + many)
                    peer.start()
                else:
                    peer.start()
                    peer.preload(big + many)
                print(f"[{name}] loaded in {time.perf_counter() - started:.0f} s", flush=True)
            rates: dict[str, dict[str, Rate]] = {}
            for label, path in (("page", "bigproject/"), ("root", "")):
                rates[label] = interleaved({name: measure(name, peer.index_url + path, peer.process.pid,
                                                          headers=PIP_HEADERS, seconds=args.seconds)
                                            for name, peer in peers.items()}, args.rounds)
                for name, rate in rates[label].items():
                    results[name][f"{label}_rps"], results[name][f"{label}_cpu_us"] = rate.rps, rate.cpu_us
            for name, peer in peers.items():
                if not args.quick:
                    results[name]["pip_download_s"] = pip_download(peer.index_url, twenty, tmp)
                    # Upload times swing with the disk's flush latency (shared machines): take a median.
                    results[name]["twine_upload_s"] = statistics.median(
                        twine_upload(peer.upload_url, batch, peer.auth, tmp) for batch in uploads)
                print(f"[{name}] {json.dumps({k: round(v, 2) for k, v in results[name].items()})}", flush=True)
        finally:
            for peer in peers.values():
                peer.stop()

    report(results, rates, args)


def report(results: dict[str, dict[str, float]], rates: dict[str, dict[str, Rate]],
           args: argparse.Namespace) -> None:
    rows = [("page_rps", f"project page ({args.files} files) req/s", True),
            ("page_cpu_us", "project page, server CPU us/request", False),
            ("root_rps", f"root index ({args.projects} projects) req/s", True),
            ("root_cpu_us", "root index, server CPU us/request", False),
            ("pip_download_s", "pip download 20 wheels, cold cache, s", False),
            ("twine_upload_s", "twine upload 100 wheels, s", False)]
    peers = [p for p in results if p != "stowage"]
    header = ["measure", *results.keys(), *(f"stowage/{p} (>1 = stowage better)" for p in peers if "stowage" in results)]
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for key, label, higher_is_better in rows:
        if not all(key in result for result in results.values()):
            continue
        cells = [label] + [f"{results[p][key]:.2f}" for p in results]
        if "stowage" in results:
            for peer in peers:
                ours, theirs = results["stowage"][key], results[peer][key]
                ratio = (ours / theirs) if higher_is_better else (theirs / ours)
                cells.append(f"{ratio:.2f}x")
        print("| " + " | ".join(cells) + " |")
    # issue 16: the hot simple pages ahead of every Python peer (pypiserver, devpi) in the same run
    if "stowage" in results:
        print()
        verdicts = []
        for label, text in (("page", f"project page ({args.files} files)"),
                            ("root", f"root index ({args.projects} projects)")):
            for peer in peers:
                verdicts += compare(text, rates[label]["stowage"], rates[label][peer], 1.0)
        print_verdicts(verdicts)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

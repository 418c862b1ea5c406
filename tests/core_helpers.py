"""Helpers for core's acceptance tests: a real ``stowage serve`` subprocess, curl, RSS sampling.

A module of its own, not ``conftest``: ``from conftest import`` finds whichever conftest module pytest
loaded last (plugins/*/tests/conftest.py too), so helpers imported at run time broke in the full suite.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import urllib3

from stowage.testing import ADMIN_PASSWORD, free_port

#: the ``stowage`` script of the environment running the tests (the README's way to start the server).
STOWAGE = str(Path(sys.executable).with_name("stowage"))

RAW_HOSTED = """
[[repositories]]
name = "raw-hosted-dev"
format = "raw"
type = "hosted"
storage = { blobStoreName = "default", writePolicy = "ALLOW_ONCE" }
"""


class ServeProcess:
    """``stowage serve --config FILE --data-dir DIR`` on a free loopback port."""

    def __init__(self, config: Path, data_dir: Path, *, stowage: str = STOWAGE, env: dict | None = None,
                 log: Path | None = None, host: str = "127.0.0.1", port: int | None = None):
        self.config = config
        self.data_dir = data_dir
        self.host = host
        self.port = port or free_port()
        self.stowage = stowage
        self.env = {**os.environ, "STOWAGE_ADMIN_PASSWORD": ADMIN_PASSWORD, **(env or {})}
        self.log_path = log or data_dir.parent / f"serve-{host}-{self.port}.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def password(self) -> str:
        return ADMIN_PASSWORD

    def start(self, timeout: float = 20) -> "ServeProcess":
        self.log_file = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [self.stowage, "serve", "--config", str(self.config), "--data-dir", str(self.data_dir),
             "--host", self.host, "--port", str(self.port)],
            stdout=self.log_file, stderr=subprocess.STDOUT, env=self.env,
            start_new_session=True)  # its own process group: crash() takes the workers down with it
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"stowage serve exited with {self.process.returncode}:\n{self.log()}")
            try:
                if urllib3.request("GET", f"{self.url}/service/rest/v1/status", timeout=1, retries=False).status == 200:
                    return self
            except urllib3.exceptions.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"stowage serve did not answer within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def rss_kib(self) -> int:
        """The largest resident set among the server's processes: ``stowage serve`` runs one worker process
        per CPU by default, and the memory limits hold for each process that serves."""
        pids = [self.pid]
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        if children.exists():
            pids += [int(p) for p in children.read_text().split()]
        sizes = [size for size in map(_rss_kib, pids) if size is not None]
        if not sizes:
            raise RuntimeError("no VmRSS")
        return max(sizes)

    def crash(self) -> None:
        """SIGKILL the supervisor and every worker at once, as a power cut or OOM kill of the group would (a
        SIGKILL of the supervisor alone lets the workers finish their requests: they get SIGTERM)."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        if sig == signal.SIGKILL:
            self.crash()
            self.log_file.close()
            return self.process.returncode
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()
        finally:
            self.log_file.close()


class RssSampler:
    """Samples a process's VmRSS every few milliseconds in a thread; ``peak_kib`` is the maximum seen."""

    def __init__(self, read: Callable[[], int], interval: float = 0.02):
        self.read = read
        self.interval = interval
        self.peak_kib = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak_kib = max(self.peak_kib, self.read())
                self.samples += 1
            except (OSError, RuntimeError):
                return
            self._stop.wait(self.interval)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()



def curl(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run curl quietly; returns the completed process (stdout as text)."""
    return subprocess.run(["curl", "-sS", *args], capture_output=True, text=True, check=check, timeout=timeout)


def write_sparse_random(path: Path, size: int, seed: int = 0) -> str:
    """Write ``size`` pseudo-random bytes to ``path`` 1 MiB at a time; returns their sha256."""
    import hashlib
    import random

    rng = random.Random(seed)
    digest = hashlib.sha256()
    block = rng.randbytes(1 << 20)
    with open(path, "wb") as handle:
        written = 0
        i = 0
        while written < size:
            # Vary each block cheaply so the file does not compress or deduplicate to nothing.
            chunk = (i.to_bytes(8, "big") + block[8:])[: size - written]
            handle.write(chunk)
            digest.update(chunk)
            written += len(chunk)
            i += 1
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except FileNotFoundError:  # a worker that exited between listing and reading
        return None
    return None


def send_head(port: int, method: str, path: str, headers: dict[str, str]) -> socket.socket:
    """A connection to 127.0.0.1:``port`` that has sent a request's line and headers (and nothing else)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", *(f"{k}: {v}" for k, v in headers.items())]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass  # the server closed with our unread bytes still queued: TCP reports that as a reset
    return received

"""Fixtures for core's tests (the helpers live in core_helpers.py)."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Callable, Iterator

import pytest

from core_helpers import RAW_HOSTED, ServeProcess


@pytest.fixture
def serve_factory(tmp_path: Path) -> Iterator[Callable[..., ServeProcess]]:
    """Start ``stowage serve`` subprocesses with a TOML config text; all are stopped at the end."""
    started: list[ServeProcess] = []
    counter = iter(range(1000))

    def factory(config_text: str = RAW_HOSTED, *, data_dir: Path | None = None, **kwargs) -> ServeProcess:
        n = next(counter)
        config = tmp_path / f"config-{n}.toml"
        config.write_text(config_text)
        server = ServeProcess(config, data_dir or tmp_path / "data", **kwargs)
        started.append(server)
        return server.start()

    yield factory
    for server in started:
        server.stop(signal.SIGKILL if server.process and server.process.poll() is None else signal.SIGTERM)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 24 MiB tmpfs mounted for the test, to fill (root only, as in CI; skipped elsewhere)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs", str(mount)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"a small tmpfs cannot be mounted here (CI runs as root): {result.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)

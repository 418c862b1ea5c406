"""Fixtures for core's tests (the helpers live in core_helpers.py)."""

from __future__ import annotations

import signal
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

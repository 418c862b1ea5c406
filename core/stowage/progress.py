"""Progress of long maintenance runs (backup, restore, verify): files and bytes done, rate, ETA.

On a terminal it is a live rich progress bar; elsewhere (a task thread, a log, CI) it is silent while it
runs and the caller prints or logs the summary. A ``listener`` gets a one-line description after each
step (a task shows it as its message; it may raise to stop the run). Counters are thread-safe.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import IO, Any, Callable

from rich.console import Console
from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                           TransferSpeedColumn)


class RunProgress:
    """Counts files and bytes of one phase; shows a bar when ``show`` (default: stderr is a terminal)."""

    def __init__(self, *, show: bool | None = None, stream: IO[str] | None = None,
                 listener: Callable[[str], None] | None = None):
        stream = stream or sys.stderr
        self.listener = listener
        self.description = ""
        self._total_bytes = 0
        self.show = stream.isatty() if show is None else show
        self._lock = threading.Lock()
        self._progress: Progress | None = None
        self._files_task: Any = None
        self._bytes_task: Any = None
        self.files = 0
        self.bytes = 0
        self._files_total = 0
        self.started = time.monotonic()
        if self.show:
            self._progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                      TextColumn("{task.fields[files]} files"), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
                                      console=Console(file=stream), transient=False)

    def __enter__(self) -> "RunProgress":
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.stop()

    def phase(self, description: str, *, files: int, total_bytes: int) -> None:
        """Start counting a new phase of ``files`` files and ``total_bytes`` bytes."""
        with self._lock:
            self.files = 0
            self.bytes = 0
            self.description = description
            self._total_bytes = total_bytes
            self.started = time.monotonic()
            if self._progress is not None:
                if self._bytes_task is not None:
                    self._progress.update(self._bytes_task, visible=False)
                # One task whose "completed" is bytes (rate and ETA come from bytes); files in the text.
                self._bytes_task = self._progress.add_task(description, total=max(total_bytes, 1),
                                                           files=f"0/{files}")
            self._files_total = files

    def advance(self, files: int = 1, nbytes: int = 0) -> None:
        with self._lock:
            self.files += files
            self.bytes += nbytes
            if self._progress is not None and self._bytes_task is not None:
                self._progress.update(self._bytes_task, advance=nbytes, files=f"{self.files}/{self._files_total}")
        if self.listener is not None:
            self.listener(self.line())

    def line(self) -> str:
        """``backup: 120/400 files, 1.2 GiB of 4.0 GiB, 95.0 MiB/s, about 30 s left``."""
        rate = self.rate()
        left = (self._total_bytes - self.bytes) / rate if rate > 0 else None
        return (f"{self.description}: {self.files}/{self._files_total} files, {human_bytes(self.bytes)} of "
                f"{human_bytes(self._total_bytes)}, {human_bytes(rate)}/s"
                + (f", about {left:.0f} s left" if left is not None else ""))

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def rate(self) -> float:
        """Bytes per second in the current phase so far."""
        return self.bytes / self.elapsed if self.elapsed > 0 else 0.0


def human_bytes(value: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{int(value)} B"
        value /= 1024
    return f"{value} B"

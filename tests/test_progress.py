"""Progress of long runs: a live bar on a terminal (files, bytes, rate, ETA), silent elsewhere."""

from __future__ import annotations

import io

from stowage.progress import RunProgress, human_bytes


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_files_bytes_rate_and_eta():
    screen = Terminal()
    with RunProgress(stream=screen) as progress:
        progress.phase("backup", files=4, total_bytes=4 * 1024 * 1024)
        for _ in range(3):
            progress.advance(1, 1024 * 1024)
    text = screen.getvalue()
    assert "backup" in text and "3/4 files" in text
    assert "3.0/4.2 MB" in text or "3.1/4.2 MB" in text  # rich's DownloadColumn (decimal units)
    assert "/s" in text  # the transfer rate
    assert (progress.files, progress.bytes) == (3, 3 * 1024 * 1024)


def test_silent_when_not_a_terminal_but_still_counting():
    stream = io.StringIO()
    with RunProgress(stream=stream) as progress:
        progress.phase("verify", files=2, total_bytes=10)
        progress.advance(2, 10)
    assert stream.getvalue() == "" and progress.files == 2 and progress.rate() > 0


def test_human_bytes():
    assert [human_bytes(v) for v in (512, 2048, 5 * 1024**3)] == ["512 B", "2.0 KiB", "5.0 GiB"]

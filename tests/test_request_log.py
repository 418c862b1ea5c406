"""The request log of a real ``stowage serve``, driven with curl: one NCSA combined line per request."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from core_helpers import curl

from stowage.testing import ADMIN_PASSWORD

LINE = re.compile(r'^(?P<host>\S+) - (?P<user>\S+) \[(?P<time>\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000)\] '
                  r'"(?P<request>(?:[^"\\]|\\.)*)" (?P<status>\d{3}) (?P<bytes>\d+|-) '
                  r'"(?P<referer>(?:[^"\\]|\\.)*)" "(?P<agent>(?:[^"\\]|\\.)*)" (?P<ms>\d+)$')


def log_lines(path: Path, agent_prefix: str, expected: int, timeout: float = 5.0) -> list[re.Match]:
    """The log's lines whose User-Agent starts with ``agent_prefix``, once ``expected`` of them arrived."""
    deadline = time.monotonic() + timeout
    while True:
        text = path.read_text() if path.exists() else ""
        lines = [line for line in text.splitlines() if f'"{agent_prefix}' in line]
        if len(lines) >= expected or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    matches = [LINE.match(line) for line in lines]
    assert all(matches), lines
    return matches  # type: ignore[return-value]


def test_one_line_per_request_with_user_status_bytes_and_duration(serve_factory, tmp_path):
    server = serve_factory()
    admin = f"admin:{ADMIN_PASSWORD}"
    base = f"{server.url}/repository/raw-hosted-dev"
    body = tmp_path / "big.bin"
    body.write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    curl("-f", "-u", admin, "-A", "t-put", "-T", str(body), f"{base}/big.bin")
    curl("-f", "-A", "t-get", "-o", "/dev/null", f"{base}/big.bin")
    curl("-f", "-A", "t-range", "-r", "0-99", "-o", "/dev/null", f"{base}/big.bin")
    curl("-f", "-A", "t-head", "-I", f"{base}/big.bin")
    curl("-A", "t-missing", "-o", "/dev/null", f"{base}/nothing-here")
    curl("-A", 't-evil "quoted"\\', "-u", "admin:wrong", "-o", "/dev/null", f"{base}/big.bin")
    # A proxy of the same server: its miss streams the body while it downloads (size known at the end).
    proxy = {"name": "raw-proxy", "online": True, "storage": {"blobStoreName": "default"},
             "proxy": {"remoteUrl": f"{base}/", "contentMaxAge": 1440, "metadataMaxAge": 1440},
             "negativeCache": {"enabled": False, "timeToLive": 1}, "httpClient": {"blocked": False,
                                                                                "autoBlock": False}}
    curl("-f", "-u", admin, "-A", "t-create", "-H", "Content-Type: application/json", "-d", json.dumps(proxy),
         f"{server.url}/service/rest/v1/repositories/raw/proxy")
    curl("-f", "-A", "t-stream", "-o", "/dev/null", f"{server.url}/repository/raw-proxy/big.bin")

    lines = {m["agent"]: m for m in log_lines(server.data_dir / "log" / "request.log", "t-", 8)}
    assert len(lines) == 8, sorted(lines)
    assert lines["t-put"]["user"] == "admin" and lines["t-put"]["status"] == "201"
    assert lines["t-put"]["request"] == "PUT /repository/raw-hosted-dev/big.bin HTTP/1.1"
    assert (lines["t-get"]["user"], lines["t-get"]["status"], lines["t-get"]["bytes"]) == ("-", "200", "1048576")
    assert (lines["t-range"]["status"], lines["t-range"]["bytes"]) == ("206", "100")
    assert (lines["t-head"]["status"], lines["t-head"]["bytes"]) == ("200", "-")
    assert lines["t-missing"]["status"] == "404"
    evil = lines['t-evil \\"quoted\\"\\\\']
    assert (evil["status"], evil["user"]) == ("401", "-")
    assert lines["t-create"]["status"] == "201"
    assert (lines["t-stream"]["status"], lines["t-stream"]["bytes"]) == ("200", "1048576")
    assert all(m["host"] == "127.0.0.1" and int(m["ms"]) >= 0 for m in lines.values())


def test_request_log_to_stdout_or_off(stowage_factory, live_server_factory):
    quiet = stowage_factory(request_log="off")
    live = live_server_factory(quiet)
    curl("-f", "-o", "/dev/null", f"{live.url}/service/rest/v1/status")
    assert live.server.request_log is None
    assert not (quiet.stowage.settings.data_path / "log").exists()


@pytest.mark.slow
def test_worker_processes_share_one_log_without_torn_lines(serve_factory, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    server = serve_factory(env={"STOWAGE_WORKERS": "2"})
    url = f"{server.url}/service/rest/v1/status"
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: curl("-f", "-A", f"w-{n}", "-o", "/dev/null", url), range(200)))
    lines = log_lines(server.data_dir / "log" / "request.log", "w-", 200)
    assert sorted(m["agent"] for m in lines) == sorted(f"w-{n}" for n in range(200))


def test_an_unwritable_request_log_is_a_clear_configuration_error(tmp_path):
    from stowage.errors import ConfigurationError
    from stowage.request_log import LineWriter

    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigurationError, match="requestLog: cannot open"):
        LineWriter(str(blocker / "request.log"))

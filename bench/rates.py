"""Hot request rates of one URL against a peer server's, in one run (issue 16: metadata GETs against peers).

Used by the per-format benches (``pypi.py``, ``npm.py``, ``oci.py``, ``yum.py``). Every server is driven
by the same C load generator with keep-alive connections, so the client costs the same for each:

- ``GET``: ``wrk -t1 -c<connections>``;
- ``HEAD``: ``ab -k -i`` (Debian's ``apache2-utils``): wrk 4.1 does not know a HEAD response has no body
  and waits for one, so it counts no request at all.

Beside the rate, the server's CPU time per request (user + system of its process and its direct children,
the worker processes, over the run): on a shared machine other jobs' load lowers every rate, but not the
work each request takes, so the CPU figure is the steadier comparison.
"""

from __future__ import annotations

import functools
import re
import shutil
import statistics
import subprocess
from dataclasses import dataclass
from typing import Callable

import urllib3

from blobs import tree_cpu_seconds

CONNECTIONS = 16


@dataclass(frozen=True)
class Rate:
    """One server's hot rate for one request."""

    server: str
    rps: float
    cpu_us: float  # server CPU microseconds per request
    size: int  # body bytes of one response as sent (compressed if the server compressed it)


def require_tools() -> None:
    missing = [tool for tool in ("wrk", "ab") if shutil.which(tool) is None]
    if missing:
        raise SystemExit(f"needs {' and '.join(missing)} (Debian packages wrk, apache2-utils)")


def _wrk(url: str, headers: dict[str, str], seconds: float, connections: int) -> tuple[int, float]:
    extra = [a for k, v in headers.items() for a in ("-H", f"{k}: {v}")]
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", *extra, url],
                         capture_output=True, text=True, check=True).stdout
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: .*", out)
    if bad or (errors and "timeout 0" not in errors.group(0)):
        raise RuntimeError(f"GET {url}: {bad.group(0) if bad else errors.group(0)}")
    count = int(re.search(r"(\d+) requests in", out).group(1))
    return count, float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def _ab(url: str, headers: dict[str, str], seconds: float, connections: int) -> tuple[int, float]:
    extra = [a for k, v in headers.items() for a in ("-H", f"{k}: {v}")]
    # -n: more than any run completes, so -t decides when it ends
    out = subprocess.run(["ab", "-q", "-k", "-i", "-c", str(connections), "-t", str(max(1, round(seconds))),
                          "-n", "100000000", *extra, url], capture_output=True, text=True, check=True).stdout
    bad = re.search(r"Non-2xx responses:\s+(\d+)", out)
    failed = int(re.search(r"Failed requests:\s+(\d+)", out).group(1))
    if bad or failed:
        raise RuntimeError(f"HEAD {url}: {bad.group(0) if bad else f'{failed} failed requests'}")
    count = int(re.search(r"Complete requests:\s+(\d+)", out).group(1))
    return count, float(re.search(r"Requests per second:\s+([\d.]+)", out).group(1))


def hot_rate(server: str, url: str, pid: int, *, method: str = "GET", headers: dict[str, str] | None = None,
             seconds: float = 5.0, connections: int = CONNECTIONS, warm_up: bool = True) -> Rate:
    """``url``'s rate once hot: one checked request (must be 200), a 1 s warm-up (unless ``warm_up`` is
    False: already done), then ``seconds``."""
    headers = dict(headers or {})
    first = urllib3.request(method, url, headers=headers, decode_content=False, retries=False, timeout=30)
    if first.status != 200:
        raise RuntimeError(f"{server}: {method} {url} answered {first.status}: {first.data[:200]!r}")
    run = _ab if method == "HEAD" else _wrk
    if warm_up:
        run(url, headers, 1, connections)
    before = tree_cpu_seconds(pid)
    count, rps = run(url, headers, seconds, connections)
    used = tree_cpu_seconds(pid) - before
    return Rate(server, rps, used / max(count, 1) * 1e6, len(first.data))


def interleaved(measures: dict[str, Callable[..., Rate]], rounds: int) -> dict[str, Rate]:
    """Each measure ``rounds`` times, in turn (A B C A B C ...), and the median rate and CPU of each: other
    jobs' load drifts over a run, and alternating spreads the drift over every server instead of handing
    it to whichever was measured at the worst moment. Each measure is called with ``warm_up`` True in the
    first round only."""
    taken: dict[str, list[Rate]] = {key: [] for key in measures}
    for round_ in range(rounds):
        for key, measure in measures.items():
            taken[key].append(measure(warm_up=round_ == 0))
    return {key: Rate(rates[0].server, statistics.median(r.rps for r in rates),
                      statistics.median(r.cpu_us for r in rates), rates[0].size)
            for key, rates in taken.items()}


def compare(label: str, ours: Rate, peer: Rate, goal: float | None) -> list[tuple[str, bool]]:
    """Print one measurement and return its verdicts: by rate (the issue's goal: Stowage's rate at least
    ``goal`` times the peer's; 1.0 means strictly ahead) and by server CPU per request (the peer's CPU over
    ours, same bound). ``goal`` None: the peer is a reference only, no verdict."""
    ratio, cpu_ratio = ours.rps / peer.rps, peer.cpu_us / ours.cpu_us
    print(f"{label:40} stowage {ours.rps:7.0f} req/s {ours.cpu_us:5.0f} us/req ({ours.size} B) | "
          f"{peer.server} {peer.rps:7.0f} req/s {peer.cpu_us:5.0f} us/req ({peer.size} B) | ratio {ratio:5.2f}, "
          f"by CPU {cpu_ratio:5.2f}", flush=True)
    if goal is None:
        return []
    wanted = "> 1 (ahead)" if goal == 1.0 else f">= {goal:.2f}"

    def met(value: float) -> bool:
        return value > goal if goal == 1.0 else value >= goal

    return [(f"{label} vs {peer.server}: rate ratio {ratio:.2f} {wanted}", met(ratio)),
            (f"{label} vs {peer.server}: CPU/request ratio {cpu_ratio:.2f} {wanted}", met(cpu_ratio))]


def print_verdicts(verdicts: list[tuple[str, bool]]) -> None:
    print("\nissue 16 goals (metadata GETs, hot, against peers in this run):")
    for text, met in verdicts:
        print(f"  {text:78} {'met' if met else 'MISSED'}")


def measure(server: str, url: str, pid: int, **options) -> Callable[..., Rate]:
    """``hot_rate`` of ``url`` with ``options``, to be called (with ``warm_up``) by :func:`interleaved`."""
    return functools.partial(hot_rate, server, url, pid, **options)

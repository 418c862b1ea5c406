"""``stowage serve --workers N``: N waitress processes accepting on one listening socket.

Small requests are bound by waitress's per-request cost in one interpreter; two processes on two cores
serve about 2.2x as many (PERF_NOTES). The parent never builds the application (so it holds no threads
and no database connections when it forks): a first child applies the configuration (admin user,
repositories) alone, then the parent binds the main port and forks the workers, which each build their
own app and serve the inherited socket. Everything they must agree on is in the catalog.

SIGTERM or SIGINT to the parent is passed to every worker, which finishes its running requests and
exits; the parent exits when they all have. A worker that dies is replaced, unless it dies within
seconds of starting (a broken configuration must not become a fork loop). A parent that dies without
passing anything on (``kill -9``, an OOM kill) takes its workers with it: the kernel sends each one
SIGTERM (``PR_SET_PDEATHSIG``; elsewhere a thread notices the new parent), so no orphan keeps the ports
and a restart can bind them again.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
import time
from typing import Any, Callable, Mapping

log = logging.getLogger(__name__)

#: a worker that exits sooner than this after starting is not restarted.
MIN_UPTIME_SECONDS = 5.0


#: ``stowage serve`` without ``--workers``: one process per usable CPU, at most this many (each worker holds
#: its own app, ~50 MB resident; beyond 4 the catalog's single writer is what limits, not the interpreter).
MAX_DEFAULT_WORKERS = 4


def default_workers() -> int:
    """Worker processes for ``stowage serve`` without ``--workers``: the CPUs this process may run on.

    One interpreter serves small requests at waitress's per-request cost under one GIL; a process per core
    is what uses the machine (measured in docs/performance.md, "Defaults").
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_DEFAULT_WORKERS))


#: how often a worker without ``PR_SET_PDEATHSIG`` checks that its parent is alive.
PARENT_POLL_SECONDS = 1.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    """SIGTERM this process when ``parent`` dies (a worker then drains and exits as on a normal stop)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        registered = libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) == 0
    except (OSError, AttributeError):
        registered = False  # not Linux
    if registered:
        if os.getppid() != parent:  # it died between fork() and prctl(): the signal will never come
            os.kill(os.getpid(), signal.SIGTERM)
        return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_SECONDS)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="stowage-parent-watch", daemon=True).start()


def _fork(target: Callable[[], int]) -> int:
    parent = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        _die_with_parent(parent)
        code = target()
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:
        log.exception("worker %s failed", os.getpid())
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def listen_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=1024)


def serve_workers(workers: int, config_path: str | None, overrides: Mapping[str, Any]) -> int:
    from stowage.app import create_app, load
    from stowage.serialization import make_converter
    from stowage.server import Server
    from stowage.settings import load_config_file

    def bootstrap() -> int:
        load(config_path, overrides=overrides).close()
        return 0

    pid = _fork(bootstrap)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        return 2
    settings = load_config_file(config_path, make_converter(), overrides=overrides).server
    sock = listen_socket(settings.host, settings.port)
    log.info("Stowage: %s workers on http://%s:%s", workers, settings.host, sock.getsockname()[1])

    def worker() -> int:
        stowage = load(config_path, overrides=overrides)
        try:
            Server(create_app(stowage), stowage, sock=sock, reuse_port=True).serve()
        finally:
            stowage.close()
        return 0

    stopping = False
    children: dict[int, float] = {}

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for child in list(children):
            try:
                os.kill(child, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for _ in range(workers):
        children[_fork(worker)] = time.monotonic()
    code = 0
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        started = children.pop(pid, None)
        if started is None or stopping:
            continue
        exit_code = os.waitstatus_to_exitcode(status)
        if time.monotonic() - started < MIN_UPTIME_SECONDS:
            log.error("worker %s exited with %s right after starting; stopping", pid, exit_code)
            code = 1
            stop(signal.SIGTERM, None)
            continue
        log.warning("worker %s exited with %s; starting another", pid, exit_code)
        children[_fork(worker)] = time.monotonic()
    sock.close()
    return code

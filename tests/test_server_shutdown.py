"""Stopping the bundled waitress server: no writes through closed descriptors, no worker left waiting."""

import io
import os
import socket
import threading
import time

from stowage.server import create_listener


def test_a_trigger_pulled_after_close_writes_to_nothing_that_reuses_its_descriptor():
    listener = create_listener(lambda environ, start_response: [], map={}, host="127.0.0.1", port=0)
    trigger = listener.trigger
    old_write_fd = trigger.trigger
    listener.close()
    listener.task_dispatcher.shutdown()
    read_end, write_end = os.pipe()
    os.dup2(write_end, old_write_fd)  # the process reuses the number, as it does for the next socket or file
    os.set_blocking(read_end, False)
    try:
        trigger.pull_trigger()  # what a worker thread finishing a response does
        trigger.pull_trigger(lambda: None)  # what Server.stop_loop does
        try:
            stray = os.read(read_end, 10)
        except BlockingIOError:
            stray = b""
        assert stray == b""
    finally:
        for fd in {read_end, write_end, old_write_fd}:
            os.close(fd)


def test_stopping_twice_while_a_worker_streams_to_a_client_that_does_not_read(stowage_app, live_server_factory):
    repository = stowage_app.create_repository(name="raw", format="raw", type="hosted")
    size = 40 * 1024 * 1024  # beyond waitress's 16 MiB output high-water mark: the worker waits for the loop
    repository.store("big.bin", io.BytesIO(b"\0" * size), length=size)
    server = live_server_factory(stowage_app)
    client = socket.create_connection(("127.0.0.1", server.port))
    try:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.sendall(b"GET /repository/raw/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(1)  # the worker has filled the socket and the output buffers; the client reads nothing
        workers = {t for t in threading.enumerate() if t.name.startswith("waitress-")}
        started = time.monotonic()
        server.stop()
        assert not server.thread.is_alive()
        assert time.monotonic() - started < 5, "a worker waiting to hand over output kept the server up"
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(t.is_alive() for t in workers):
            time.sleep(0.05)
        assert not any(t.is_alive() for t in workers)
        server.stop()  # a second stop (tests stop a server, then the fixture does) is a no-op, not EBADF
    finally:
        client.close()


def test_a_loop_that_died_fails_the_stop_instead_of_hiding(stowage_app, live_server_factory, monkeypatch):
    import pytest

    server = live_server_factory(stowage_app)

    def broken() -> None:
        raise SystemError("the serving loop broke")

    # the next event on the listening socket crashes the loop the way an unexpected waitress error would
    monkeypatch.setattr(server.server.main, "handle_read_event", broken)
    try:
        socket.create_connection(("127.0.0.1", server.port)).close()
    except OSError:
        pass
    server.thread.join(timeout=10)
    assert not server.thread.is_alive()
    with pytest.raises(RuntimeError, match="loop died"):
        server.stop()
    server.stop()  # reported once; the fixture's own stop then passes

"""The bundled waitress server: the main listener plus the listeners repositories own.

All listeners share one socket map and one pool of worker threads, so a repository's port (docker's
``docker.httpPort``) can be opened and closed while the server runs. SIGTERM and SIGINT stop accepting,
let running requests finish (uploads still being received, downloads still being sent, for up to
:data:`SHUTDOWN_GRACE_SECONDS`), and exit.

Several worker processes (``stowage serve --workers N``, :mod:`stowage.workers`): the parent binds the
main port once and every worker accepts on that inherited socket. Repository ports come and go at run
time, after the workers were forked, so each worker binds them itself with ``SO_REUSEPORT`` (the kernel
spreads connections over the workers), which is the one way every worker serves every port without a
restart.
"""

from __future__ import annotations

import errno
import logging
import signal
import socket
import threading
import time
from typing import Any

import waitress
from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import BaseWSGIServer
from waitress.task import WSGITask
from waitress.trigger import trigger as WaitressTrigger

from stowage.http.early_auth import EARLY_REFUSED, EarlyAuth
from stowage.checksums import ChecksumFiller
from stowage.cluster import WorkerRegistry
from stowage.request_log import LineWriter, RequestLogMiddleware, request_log_target
from stowage.stowage import Stowage
from stowage.streamed_body import (BODY_UNTIL_EOF, STREAM_THRESHOLD, BodyPipe, StreamingChunkedReceiver,
                                   StreamSlots, incomplete, too_large)

log = logging.getLogger(__name__)

#: waitress reads request bodies in chunks of this size; 1 MiB doubles upload throughput over 8 KiB.
RECV_BYTES = 1024 * 1024
#: how often listeners are reconciled with repository settings changed on other nodes.
LISTENER_PORT_KEY = "stowage.listener_port"
RECONCILE_SECONDS = 5.0
#: the most of a file response read into memory for one send (see :class:`PlainHTTPChannel`).
SEND_CHUNK = 256 * 1024
#: a first body write up to this size goes out in one send with the response head (EarlyAuthTask.write).
COALESCED_BODY_BYTES = 64 * 1024
#: how long a stopping server keeps serving requests already in progress.
SHUTDOWN_GRACE_SECONDS = 60.0
#: the serving loop's poll timeout: how quickly a signal is noticed (it never delays any I/O).
POLL_SECONDS = 0.5


class EarlyAuthParser(HTTPRequestParser):
    """waitress's request parser, asking :class:`~stowage.http.early_auth.EarlyAuth` about a request that
    holds its body back for ``100 Continue``: a refused one is complete right after its headers, with an
    empty body, no ``100`` is sent, and the connection closes after the 401 (see :class:`PlainHTTPChannel`).
    """

    early_auth: EarlyAuth | None = None
    early_refused = False

    def parse_header(self, header_plus: bytes) -> None:
        super().parse_header(header_plus)
        if (self.expect_continue and self.early_auth is not None and self.body_rcv is not None
                and self.early_auth.refuses(self.command, self.path, self.request_uri, self.headers)):
            self.early_refused = True
            self.expect_continue = False
            self.body_rcv = None  # the parser now calls the request complete, its body empty
            self.chunked = False
            self.content_length = 0
            self.headers["CONTENT_LENGTH"] = "0"
            self.headers.pop("TRANSFER_ENCODING", None)
            self.headers["CONNECTION"] = "close"

    def received(self, data: bytes) -> int:
        consumed = super().received(data)
        if self.early_refused:
            return len(data)  # body bytes read with the headers are the refused body, not a next request
        return consumed


class StreamingParser(EarlyAuthParser):
    """Makes a request with a large or chunked body complete at its headers, its body a :class:`BodyPipe`
    the channel goes on feeding (:mod:`stowage.streamed_body`)."""

    #: set per listener (:func:`create_listener`); None: never stream.
    slots: StreamSlots | None = None
    #: the channel this parser reads for, set by :meth:`PlainHTTPChannel.new_parser`.
    channel: "PlainHTTPChannel | None" = None
    pipe: BodyPipe | None = None

    def parse_header(self, header_plus: bytes) -> None:
        super().parse_header(header_plus)
        receiver, channel = self.body_rcv, self.channel
        if receiver is None or self.early_refused or self.slots is None or channel is None:
            return
        if not self.chunked and not STREAM_THRESHOLD <= self.content_length < self.adj.max_request_body_size:
            return  # small bodies are received whole; too large ones get waitress's own 413
        if self.chunked and self.headers.get("CONTENT_TYPE", "").lower().startswith("multipart/"):
            return  # falcon's form parser needs the length, which only receiving it whole tells
        if not self.slots.take():
            return  # every other worker thread already streams: receive this body whole first
        continue_wanted, self.expect_continue = self.expect_continue, False
        self.pipe = BodyPipe(timeout=self.adj.channel_timeout, wake=channel.server.pull_trigger,
                             release=self.slots.give_back,
                             send_continue=channel.continue_streamed if continue_wanted else None)
        receiver.buf.close()  # waitress's (still empty) buffer: the pipe takes its place
        if self.chunked:
            self.body_rcv = receiver = StreamingChunkedReceiver(self.pipe)
        receiver.buf = self.pipe
        self.completed = True  # dispatch now; the channel feeds the body through receive_body()

    def receive_body(self, data: bytes) -> int:
        """Feed body bytes (event-loop thread); returns how many belonged to the body."""
        receiver, pipe = self.body_rcv, self.pipe
        assert receiver is not None and pipe is not None
        consumed = receiver.received(data)
        self.body_bytes_received += consumed
        limit = self.adj.max_request_body_size
        if self.body_bytes_received >= limit:
            pipe.fail(too_large(limit))
        elif receiver.error:
            pipe.fail(incomplete(str(receiver.error.body)))
        elif receiver.completed:
            pipe.finish()
        return consumed

    @property
    def body_open(self) -> bool:
        """The body is still arriving (neither finished nor broken off)."""
        return self.pipe is not None and not self.pipe.done and self.pipe.error is None


class EarlyAuthTask(WSGITask):
    """waitress's task, marking early-refused requests and keeping keep-alive after bodiless answers.

    waitress closes an HTTP/1.1 connection after any response without ``Content-Length``, and a 304, 204
    or 1xx never has one (it has no body: RFC 9110 forbids the header's use for its length): every
    ``If-None-Match`` revalidation cost the client a new connection and the server an accept (a 304
    measured dearer than the GET it saves). Its length is known, zero; the connection stays open unless
    something else closes it.
    """

    _bodiless_keep_alive = False

    def get_environment(self) -> dict:
        environ = super().get_environment()
        if getattr(self.request, "early_refused", False):
            environ[EARLY_REFUSED] = True
        pipe = getattr(self.request, "pipe", None)
        if pipe is not None and self.request.chunked:
            environ[BODY_UNTIL_EOF] = True
        return environ

    def write(self, data: bytes) -> None:
        # A small answer's head and body in one send: waitress sends each write at once (send_bytes 1), so
        # a 4 KiB GET cost two sendto calls and a GIL hand-off around each (strace: 2 per request).
        if (not self.wrote_header and self.complete and data.__class__ is bytes and self.has_body
                and not self.chunked_response and self.content_length is not None
                and 0 < len(data) <= self.content_length and len(data) <= COALESCED_BODY_BYTES
                and self.request.command != "HEAD"):
            head = self.build_response_header()
            self.wrote_header = True
            self.content_bytes_written += len(data)
            self.channel.write_soon(head + data)
            return
        super().write(data)

    def build_response_header(self) -> bytes:
        pipe = getattr(self.request, "pipe", None)
        if pipe is not None:
            pipe.response_started()
            if not pipe.complete:
                # the rest of the body would be read as the next request: hang up after this response
                self.set_close_on_finish()
        self._bodiless_keep_alive = (not self.has_body and self.version == "1.1" and not self.close_on_finish
                                     and self.request.headers.get("CONNECTION", "").lower() != "close")
        try:
            return super().build_response_header()
        finally:
            self._bodiless_keep_alive = False

    def set_close_on_finish(self) -> None:
        if self._bodiless_keep_alive:
            return  # waitress's "no Content-Length, so close" rule, which a bodiless answer does not need
        super().set_close_on_finish()


class PlainHTTPChannel(HTTPChannel):
    """A waitress channel that hangs up at once on a TLS handshake and reads files in bounded chunks.

    Clients told a registry is "insecure" (skopeo, podman, docker) try TLS first and fall back to plain
    HTTP only when the handshake fails; a ClientHello has no line break, so waitress would wait for one
    until the client's own timeout (10 s per connection).

    waitress reads ``SO_SNDBUF`` bytes (about 4 MB on Linux loopback) of a file response into memory for
    every send and seeks back over whatever the socket did not take: 48 concurrent downloads of one file
    took the server to 172-191 MB RSS; with reads bounded to :data:`SEND_CHUNK` it stays near 50 MB, for
    the same throughput.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.sendbuf_len = min(self.sendbuf_len, SEND_CHUNK)

    task_class = EarlyAuthTask
    #: set once a request was refused before its body (:class:`EarlyAuthParser`): what the client sends
    #: after it is that body, never a next request, and the connection closes after the 401.
    discarding = False

    #: a request already running whose body is still arriving (:class:`StreamingParser`).
    streaming: StreamingParser | None = None

    def received(self, data: bytes) -> bool:
        if self.discarding:
            return False
        if self.request is None and not self.requests and data[:1] == b"\x16" and data[1:2] == b"\x03":
            log.debug("closing a TLS handshake on plain-HTTP port from %s", self.addr)
            self.will_close = True
            self.close()
            return False
        accepted = self._receive(data)
        if any(request.early_refused for request in self.requests if isinstance(request, EarlyAuthParser)):
            self.discarding = True
        return accepted

    def _receive(self, data: bytes) -> bool:
        """waitress's ``HTTPChannel.received``, plus: bytes go to a streamed request's body while it is open.

        (A copy of waitress 3.0's loop: it hands every byte after a completed request to a new parser.)
        """
        if not data:
            return False
        with self.requests_lock:
            if self.will_close or self.close_when_flushed:
                return False
            while data:
                streaming = self.streaming
                if streaming is not None:
                    n = streaming.receive_body(data)
                    if not streaming.body_open:
                        self.streaming = None
                        if streaming.pipe is not None and not streaming.pipe.complete:
                            self.discarding = True  # broken framing: nothing after it can be parsed
                            return True
                    if n >= len(data):
                        break
                    data = data[n:]
                    continue
                if self.request is None:
                    self.request = self.new_parser()
                n = self.request.received(data)
                if (self.request.expect_continue and self.request.headers_finished and not self.requests
                        and not self.sent_continue):
                    self.send_continue()
                if self.request.completed:
                    self.sent_continue = False
                    if not self.request.empty:
                        self.requests.append(self.request)
                        if len(self.requests) == 1:
                            self.server.add_task(self)
                    if isinstance(self.request, StreamingParser) and self.request.body_open:
                        self.streaming = self.request
                    self.request = None
                if n >= len(data):
                    break
                data = data[n:]
        return True

    def new_parser(self) -> HTTPRequestParser:
        parser = self.parser_class(self.adj)
        if isinstance(parser, StreamingParser):
            parser.channel = self
        return parser

    #: whether the event loop's poll set (built by :meth:`readable` + :meth:`writable`) watches this socket.
    loop_watches = False
    _loop_writable = False
    #: the client sent EOF while a request ran: answer what it asked, then close (:meth:`handle_read`).
    peer_finished = False

    def readable(self) -> bool:
        # (event-loop thread, building its poll set: readable() then writable() of each dispatcher) both
        # answers decided at once and recorded for wake_needed() on a worker thread. No lock: "not
        # watched" is written first, so a check made while this runs wakes the loop; a True it reads was
        # computed from state no older than the poll set about to be used, and either registration
        # (input, or output: poll returns at once) brings the loop back to this socket.
        self.loop_watches = False
        wanted = self._wants_input()
        self._loop_writable = writable = bool(super().writable())
        self.loop_watches = wanted or writable
        return wanted

    def writable(self) -> bool:
        return self._loop_writable  # what readable() just recorded: the poll set is what was recorded

    def _wants_input(self) -> bool:
        streaming = self.streaming
        if streaming is not None:
            # the request runs already; read its body while its pipe has room (the reader wakes us)
            pipe = streaming.pipe
            return (self.connected and not (self.will_close or self.close_when_flushed)
                    and pipe is not None and not pipe.full)
        if self.peer_finished and self.requests:
            return False  # EOF stays readable: read it again (and close) once the answers are out
        return super().readable()

    def wake_needed(self) -> bool:
        """Whether the event loop must wake up for this connection (worker thread, asked by the trigger).

        With ``channel_request_lookahead`` the loop's poll set watches a connection for input while its
        request runs; when the worker thread has sent the whole response itself (waitress does that
        above ``send_bytes``), the loop has nothing to do for it and the next request wakes it anyway.
        waitress pulls the trigger after every request regardless: one more wake-up, poll-set rebuild
        and trigger read per request. Anything left to send, a close pending, or a poll set that does
        not watch this socket (recorded by :meth:`readable`; watched
        for output only, poll returns at once and the loop rebuilds it anyway) needs it.
        """
        return not (self.loop_watches and self.connected and not self.peer_finished
                    and not (self.total_outbufs_len or self.will_close or self.close_when_flushed))

    def service(self) -> None:
        serving = getattr(self.server.trigger, "serving", None)
        if serving is None:
            return super().service()
        serving.channel = self  # the trigger asks this channel whether a pull from this thread is needed
        try:
            super().service()
        finally:
            serving.channel = None

    def handle_read(self) -> None:
        if self.requests and self.streaming is None:
            # a request runs (channel_request_lookahead): an EOF now may be a half-close after the request,
            # whose answer the client still reads; waitress would hang up at once
            try:
                data = self.socket.recv(self.adj.recv_bytes)
            except OSError:
                self.handle_close()
                return
            if not data:
                self.peer_finished = True
                return
            self.last_activity = time.time()
            self.received(data)
            return
        super().handle_read()
        if not self.connected:
            self._body_broken_off("the client closed the connection")

    def handle_close(self) -> None:
        self._body_broken_off("the connection was closed")
        super().handle_close()

    def _body_broken_off(self, reason: str) -> None:
        streaming, self.streaming = self.streaming, None
        if streaming is not None and streaming.pipe is not None:
            streaming.pipe.fail(incomplete(reason))

    def continue_streamed(self) -> None:
        """Send ``100 Continue`` for a streamed request whose application now reads its body (worker thread).

        Flushed here: with a request running, waitress's event loop sends small outputs only with the response.
        """
        payload = b"HTTP/1.1 100 Continue\r\n\r\n"
        with self.outbuf_lock:
            if not self.connected:
                return
            self.outbufs[-1].append(payload)
            self.current_outbuf_count += len(payload)
            self.total_outbufs_len += len(payload)
            self._flush_exception(self._flush_some, do_close=False)
        self.server.pull_trigger()


class ListenerApp:
    """Tells the app which repository port a request arrived on.

    ``SERVER_PORT`` cannot say it: behind a trusted reverse proxy waitress rewrites it from
    ``X-Forwarded-Host``/``Proto``, so the listener stamps its own key that nothing else writes.
    """

    def __init__(self, app: Any, port: int | None):
        self.app = app
        self.port = port

    def __call__(self, environ: dict, start_response: Any) -> Any:
        environ[LISTENER_PORT_KEY] = self.port
        return self.app(environ, start_response)


class ClosableTrigger(WaitressTrigger):
    """waitress's wake-up pipe, made safe to pull after it was closed.

    Worker threads pull the trigger when they finish a response, and :meth:`Server.stop_loop` pulls it
    from any thread; waitress's own trigger then writes to a pipe descriptor that is already closed
    (``EBADF``) or, worse, whose number the process has meanwhile reused for another socket or file. Here a
    pull after :meth:`close` does nothing, and the two never interleave.
    """

    def __init__(self, map: dict) -> None:
        self._pull_lock = threading.Lock()
        #: per worker thread, the channel it serves (:meth:`PlainHTTPChannel.service`)
        self.serving = threading.local()
        super().__init__(map)

    def pull_trigger(self, thunk: Any = None, *, always: bool = False) -> None:
        if thunk:
            with self.lock:
                self.thunks.append(thunk)
        elif not always:
            channel = getattr(self.serving, "channel", None)
            if channel is not None and not channel.wake_needed():
                return
        with self._pull_lock:
            if not self._closed:
                self._physical_pull()

    def close(self) -> None:
        with self._pull_lock:
            super().close()


def create_listener(app: Any, *, repository_port: int | None = None, early_auth: EarlyAuth | None = None,
                    stream_slots: StreamSlots | None = None, **options: Any) -> BaseWSGIServer:
    """A waitress listener with Stowage's parser and channel; ``stream_slots`` (shared by listeners that
    share a thread pool) turns on streamed request bodies."""
    server = waitress.create_server(ListenerApp(app, repository_port), **options)
    parser = type("StreamingParser", (StreamingParser,), {"early_auth": early_auth, "slots": stream_slots})
    server.channel_class = type("PlainHTTPChannel", (PlainHTTPChannel,), {"parser_class": parser})  # type: ignore[attr-defined]
    if isinstance(server, BaseWSGIServer):
        # same map, same role; waitress offers no way to choose the trigger class up front
        server.trigger.close()
        server.trigger = ClosableTrigger(server._map)
    return server


class Server:
    def __init__(self, app: Any, stowage: Stowage, *, host: str | None = None, port: int | None = None,
                 threads: int | None = None, sock: socket.socket | None = None, reuse_port: bool = False):
        """:param sock: an already bound listening socket for the main port (shared by worker processes).
        :param reuse_port: bind repository ports with ``SO_REUSEPORT`` so sibling workers share them.
        """
        self.stowage = stowage
        settings = stowage.settings
        self.early_auth: EarlyAuth | None = getattr(app, "early_auth", None)
        self.request_log = None
        target = request_log_target(settings.request_log, settings.data_path)
        if target is not None:
            self.request_log = LineWriter(target)
            app = RequestLogMiddleware(app, self.request_log)
        self.app = app
        self.host = host or settings.host
        self.options = dict(threads=threads or settings.threads, recv_bytes=RECV_BYTES,
                            max_request_body_size=settings.max_request_body_size, ident="Stowage",
                            asyncore_use_poll=True, channel_timeout=300, connection_limit=1000,
                            # the loop watches a connection while its request runs, so a response the
                            # worker sent whole needs no wake-up (PlainHTTPChannel.wake_needed)
                            channel_request_lookahead=1,
                            outbuf_overflow=8 * 1024 * 1024)
        if settings.trusted_proxy:
            # X-Forwarded-* from the reverse proxy (examples/ shows nginx) make URLs in generated metadata
            # (npm tarballs, PyPI links, docker Location headers) point where clients reach us.
            self.options.update(trusted_proxy=settings.trusted_proxy, trusted_proxy_count=1,
                                trusted_proxy_headers=set(settings.trusted_proxy_headers),
                                clear_untrusted_proxy_headers=True)
        self.socket_map: dict = {}
        self.reuse_port = reuse_port
        # every listener shares the one thread pool, so they share its streaming slots too
        self.stream_slots = StreamSlots(self.options["threads"])
        listening = dict(map=self.socket_map, early_auth=self.early_auth, stream_slots=self.stream_slots)
        if sock is not None:
            self.main = create_listener(app, sockets=[sock], **listening, **self.options)
        else:
            self.main = create_listener(app, host=self.host, port=port if port is not None else settings.port,
                                        **listening, **self.options)
        self.port_servers: dict[int, BaseWSGIServer] = {}
        self.port_map: dict[int, str] = stowage.extension("port-map", dict)
        self._stop = threading.Event()
        self._draining = threading.Event()
        self._abort = threading.Event()
        self._lock = threading.Lock()
        self._beat_lock = threading.Lock()

    @property
    def port(self) -> int:
        return self.main.effective_port  # type: ignore[attr-defined]

    def reconcile(self) -> None:
        """Open the ports repositories ask for and close the ones no longer asked for."""
        wanted: dict[int, str] = {}
        for repository in self.stowage.repositories():
            fmt = repository.format
            if fmt is not None and fmt.port_of is not None:
                port = fmt.port_of(repository.config)
                if port:
                    wanted[port] = repository.name
        with self._lock:
            if self._stop.is_set():  # close() ran or waits for the lock: open nothing it would miss
                return
            for port in set(self.port_servers) - set(wanted):
                log.info("closing port %s", port)
                self.port_servers.pop(port).close()
                self.port_map.pop(port, None)
            for port, name in wanted.items():
                if port not in self.port_servers:
                    try:
                        if self.reuse_port:
                            listen = {"sockets": [bind_shared(self.host, port)]}
                        else:
                            listen = {"host": self.host, "port": port}
                        self.port_servers[port] = create_listener(
                            self.app, repository_port=port, map=self.socket_map, _dispatcher=self.main.task_dispatcher,
                            early_auth=self.early_auth, stream_slots=self.stream_slots,
                            **listen, **self.options)
                        log.info("repository %s listens on %s:%s", name, self.host, port)
                    except OSError as error:
                        log.error("repository %s: cannot listen on port %s: %s", name, port, error)
                        continue
                self.port_map[port] = name

    def addresses(self) -> list[str]:
        """``host:port`` of the main listener and of every repository port this process serves."""
        with self._lock:
            ports = sorted(self.port_servers)
        return [f"{self.host}:{port}" for port in [self.port, *ports]]

    def _beat(self) -> None:
        # the heartbeat rides the listener thread: it already wakes every few seconds, off the request path.
        # Under _beat_lock so that no beat lands after close() removed the entry.
        with self._beat_lock:
            if self._stop.is_set():
                return
            try:
                WorkerRegistry.of(self.stowage).beat_if_due(self.addresses())
            except Exception:
                log.exception("recording this worker's heartbeat failed")

    def _reconcile_forever(self) -> None:
        while not self._stop.wait(RECONCILE_SECONDS):
            try:
                self.reconcile()
            except Exception:
                log.exception("reconciling repository listeners failed")
            self._beat()

    def _schedule_forever(self) -> None:
        from stowage.tasks import TaskRunner

        # A catalog lease per task keeps each run to one node; ``scheduler_interval_seconds`` is how late
        # a due task may start.
        while not self._stop.wait(self.stowage.settings.scheduler_interval_seconds):
            try:
                TaskRunner.of(self.stowage).run_due()
            except Exception:
                log.exception("starting scheduled tasks failed")

    def serve(self, install_signal_handlers: bool = True) -> None:
        self.reconcile()
        self._beat()
        threading.Thread(target=self._schedule_forever, name="stowage-scheduler", daemon=True).start()
        threading.Thread(target=ChecksumFiller.of(self.stowage).sweep_at_start, name="stowage-checksum-sweep",
                         daemon=True).start()
        if install_signal_handlers:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, self._on_signal)
        threading.Thread(target=self._reconcile_forever, name="stowage-listeners", daemon=True).start()
        log.info("Stowage listening on http://%s:%s", self.host, self.port)
        try:
            self._loop()
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            self.close()

    def _loop(self) -> None:
        """waitress's event loop, plus a drain phase once :meth:`shutdown` was asked for.

        (``waitress``'s own ``run()`` stops dead on a signal, cutting off every response still being sent.)
        """
        poll = wasyncore.poll2 if self.options["asyncore_use_poll"] else wasyncore.poll
        deadline = None
        while self.socket_map:
            if self._abort.is_set():
                self._close_everything()
                return
            if self._draining.is_set():
                if deadline is None:
                    deadline = time.monotonic() + SHUTDOWN_GRACE_SECONDS
                    self._close_listeners()
                if not self._drain_channels():
                    return
                if time.monotonic() > deadline:
                    log.warning("shutdown: requests still running after %ss are cut off", SHUTDOWN_GRACE_SECONDS)
                    return
            poll(POLL_SECONDS, self.socket_map)

    def _close_everything(self) -> None:
        """Close connections the way waitress does on hang-up (``handle_close`` wakes a worker waiting to
        hand over more output), then listeners, and the wake-up triggers last."""
        dispatchers = sorted(self.socket_map.values(), key=lambda d: 0 if isinstance(d, HTTPChannel) else
                             2 if isinstance(d, WaitressTrigger) else 1)
        for dispatcher in dispatchers:
            try:
                if isinstance(dispatcher, HTTPChannel):
                    dispatcher.handle_close()
                else:
                    dispatcher.close()
            except OSError as error:  # already gone: what waitress's own close_all tolerates
                if error.errno not in (errno.EBADF, errno.ENOTCONN):
                    raise

    def _close_listeners(self) -> None:
        with self._lock:
            for server in self.port_servers.values():
                server.close()
            self.port_servers.clear()
        self.main.close()

    def _drain_channels(self) -> bool:
        """Close idle connections, finish the rest without keep-alive; True while some are still busy."""
        busy = False
        for channel in list(self.socket_map.values()):
            if not isinstance(channel, HTTPChannel):
                continue
            if channel.requests or channel.request is not None:
                busy = True  # a request is being received or run; its response comes next
            elif channel.total_outbufs_len:
                busy = True
                channel.close_when_flushed = True  # send the rest of the response, then close
            else:
                channel.handle_close()
        return busy

    def shutdown(self) -> None:
        """Stop accepting connections, finish the requests in progress, then end :meth:`serve`."""
        self._draining.set()

    def stop_loop(self) -> None:
        """Ask the serving loop (from any thread) to close every socket at once, which ends :meth:`serve`.

        Only a flag and a wake-up: closing the trigger from a thunk raced with our own write to it (a byte
        already in the pipe ran the thunk, which closed the pipe before ``pull_trigger`` wrote to it).
        """
        self._abort.set()
        try:
            self.main.trigger.pull_trigger(always=True)
        except OSError:
            pass  # the loop has already closed everything

    def _on_signal(self, signum: int, frame: Any) -> None:
        log.info("received signal %s, finishing requests in progress, then exiting", signum)
        self.shutdown()

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            for server in self.port_servers.values():
                server.close()
            self.port_servers.clear()
        self.main.close()
        self.main.task_dispatcher.shutdown(cancel_pending=False, timeout=10)
        if self.request_log is not None:
            self.request_log.close()
        with self._beat_lock:
            try:
                WorkerRegistry.of(self.stowage).leave()
            except Exception:
                log.exception("removing this worker's heartbeat failed")


def bind_shared(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` that sibling worker processes can bind too (``SO_REUSEPORT``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(1024)
    except BaseException:
        sock.close()
        raise
    return sock

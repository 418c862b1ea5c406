"""Single flight for proxy fetches: one upstream request per path, however many clients ask at once.

Two levels, so that correctness never rests on in-process state alone:

- across processes and nodes, the catalog lease ``proxy-fetch:<repo>:<path>`` decides who fetches; the
  holder renews it while the body downloads; everyone else waits for the lease to go away and then reads
  the outcome from the catalog (the committed asset, or the negative-cache entry);
- inside one process, a :class:`Flight` object lets the requests that arrive while a download runs
  stream the body as it arrives (from the blob writer's spool file), so no waiter sits idle until a
  large file commits, and none of them downloads again.

A flight's last byte is only released to clients once the blob has been verified and committed; a body
that fails (cut connection, wrong length or digest) makes every reader fail, so a client sees a broken
connection, never a short 200.
"""

from __future__ import annotations

import threading
from typing import IO, Any, Callable

from attrs import define, field, frozen

from stowage.blobstore.base import CHUNK_SIZE
from stowage.errors import StowageError, UpstreamError
from stowage.models import Asset


class FlightState:
    PENDING = "pending"  # the upstream has not answered yet
    STREAMING = "streaming"  # a 200 body is being written to the blob store
    DONE = "done"  # outcome is set: an asset, None (not found), or an error


@define(eq=False)
class Flight:
    """One in-process fetch of one path, shared by every thread that asked for it meanwhile."""

    key: str
    #: the catalog lease owner of this fetch (unique per flight).
    owner: str = ""
    state: str = FlightState.PENDING
    #: bytes of the body written to the spool so far.
    written: int = 0
    #: the body's announced length (Content-Length), None when the remote streams without one.
    size: int | None = None
    content_type: str = "application/octet-stream"
    #: opens a new read handle on the bytes written so far (None: the blob store cannot; wait for commit).
    open_partial: Callable[[], IO[bytes] | None] | None = None
    #: opens the committed blob (for a reader that arrives just as the spool is renamed into place).
    open_committed: Callable[[], IO[bytes]] | None = None
    asset: Asset | None = None
    error: StowageError | None = None
    committed: bool = False
    condition: threading.Condition = field(factory=threading.Condition)

    # -- the fetching side ----------------------------------------------------------------------------
    def streaming(self, size: int | None, content_type: str, open_partial: Callable[[], IO[bytes] | None],
                  open_committed: Callable[[], IO[bytes]]) -> None:
        with self.condition:
            self.size, self.content_type, self.open_partial = size, content_type, open_partial
            self.open_committed = open_committed
            self.state = FlightState.STREAMING
            self.condition.notify_all()

    def progress(self, written: int) -> None:
        with self.condition:
            self.written = written
            self.condition.notify_all()

    def finish(self, *, asset: Asset | None = None, error: StowageError | None = None) -> None:
        with self.condition:
            self.asset, self.error = asset, error
            self.committed = asset is not None and error is None and self.state == FlightState.STREAMING
            self.state = FlightState.DONE
            self.condition.notify_all()

    # -- the waiting side -----------------------------------------------------------------------------
    def wait_started(self) -> None:
        """Block until the remote answered (a body started, or the outcome is known)."""
        with self.condition:
            while self.state == FlightState.PENDING:
                self.condition.wait(1.0)

    def wait_done(self) -> None:
        with self.condition:
            while self.state != FlightState.DONE:
                self.condition.wait(1.0)

    def can_stream(self) -> bool:
        return self.state == FlightState.STREAMING and self.open_partial is not None


class FlightTable:
    """The flights running in this process, by key (an app extension: ``stowage.extension``)."""

    def __init__(self) -> None:
        self._flights: dict[str, Flight] = {}
        self._lock = threading.Lock()

    def join(self, key: str) -> tuple[Flight, bool]:
        """The flight for ``key`` and whether the caller leads it (must fetch) or follows it."""
        with self._lock:
            flight = self._flights.get(key)
            # A finished flight still in the table belongs to requests that were already waiting; a
            # newcomer asks again (its predecessor's error is not its own, and a success is in the catalog).
            if flight is not None and flight.state != FlightState.DONE:
                return flight, False
            flight = self._flights[key] = Flight(key)
            return flight, True

    def end(self, flight: Flight) -> None:
        with self._lock:
            if self._flights.get(flight.key) is flight:
                del self._flights[flight.key]

    def __len__(self) -> int:
        return len(self._flights)


@frozen
class InFlightAsset:
    """An asset whose body is still arriving from the remote; ``send_asset`` streams it as it comes.

    It has no ETag (the digest is known only at the end) and ignores ``Range`` (a full 200 is a valid
    answer). Reading fails, and the client's connection is cut, if the download fails.
    """

    repository: str
    path: str
    size: int | None
    content_type: str
    flight: Flight
    cache_status: str = "miss"

    def open(self) -> "TailReader":
        return TailReader(self.flight)


class TailReader:
    """Reads a flight's spool file as it grows; the last byte only once the blob is committed."""

    def __init__(self, flight: Flight):
        self._flight = flight
        try:
            handle = flight.open_partial() if flight.open_partial else None
        except FileNotFoundError:  # committed (renamed) or aborted (removed) meanwhile
            handle = None
        if handle is None:
            # Done meanwhile, or a blob store that cannot read a blob while it is written (S3): the
            # client gets the committed blob once it is verified.
            flight.wait_done()
            if not flight.committed or flight.open_committed is None:
                raise flight.error or UpstreamError(f"{flight.key}: the download failed") from None
            handle = flight.open_committed()
        self._handle: IO[bytes] = handle
        self._position = 0
        self._primed: bytes | None = None

    def prime(self) -> None:
        """Wait for the first bytes now, in the request handler: a download that fails before any byte
        reaches the client raises here and becomes a proper error response (502), instead of a failure
        inside the server before the headers are out (which waitress answers with a bare 500)."""
        self._primed = self.read(CHUNK_SIZE)

    def read(self, size: int = -1) -> bytes:
        flight = self._flight
        if size is None or size < 0:
            size = CHUNK_SIZE
        if self._primed is not None:
            data, self._primed = self._primed[:size], self._primed[size:] or None
            return data
        with flight.condition:
            while True:
                if flight.state == FlightState.DONE and not flight.committed:
                    raise flight.error or UpstreamError(f"{flight.key}: the download failed")
                # Hold the last byte back until the blob is verified: a client must never receive a
                # complete-looking body that was then found to be wrong.
                available = flight.written if flight.committed else flight.written - 1
                if self._position < available:
                    want = min(size, available - self._position)
                    break
                if flight.committed:
                    return b""
                flight.condition.wait(1.0)
        data = self._handle.read(want)
        if not data:
            raise UpstreamError(f"{flight.key}: the spool ended early")
        self._position += len(data)
        return data

    def close(self) -> None:
        self._handle.close()

    def __iter__(self) -> Any:
        while True:
            chunk = self.read(CHUNK_SIZE)
            if not chunk:
                return
            yield chunk

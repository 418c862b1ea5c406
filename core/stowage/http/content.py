"""Serving stored content: ETag / If-None-Match, Last-Modified, single Range, HEAD, exact length.

Bodies are handed to the server as open files so waitress streams them without a worker thread.

Every response that carries stored, proxied or generated repository content goes through
:func:`protect_content`: whoever may push is hostile, and the bytes are served from the web UI's own
origin, so the browser must never run them (docs/security.md).
"""

from __future__ import annotations

import functools

import re
import time
from email.utils import parsedate_to_datetime
from typing import IO, TYPE_CHECKING, Callable

import falcon

from stowage.errors import RangeNotSatisfiable, StowageError, UpstreamError
from stowage.models import Asset

#: bodies up to this size are read into memory and sent as bytes; larger ones are streamed from the file.
SMALL_BODY = 64 * 1024
#: a blob store that can hand out direct download URLs (S3 ``redirectDownloads``) is used for bodies from
#: this size: below it, relaying costs less than the client's extra round trip, and manifests and index
#: documents keep the headers their clients read from Stowage's own answer.
REDIRECT_MIN_SIZE = 1024 * 1024

if TYPE_CHECKING:
    from stowage.proxy_flight import InFlightAsset

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")

#: The policy of every content response: an HTML or SVG body renders (at most) as an inert document in a
#: unique opaque origin; no script runs, no request leaves it, it cannot reach the UI's cookies or API.
#: Images, text and PDFs still display (Chromium's PDF viewer works in a sandboxed top-level document).
CONTENT_SECURITY_POLICY = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; sandbox"


def protect_content(resp: falcon.Response) -> None:
    """Forbid the browser to sniff a type or to run the body as active content in Stowage's origin."""
    resp.set_header("X-Content-Type-Options", "nosniff")
    resp.set_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(timestamp: float) -> str:
    """RFC 9110 IMF-fixdate (``Sun, 06 Nov 1994 08:49:37 GMT``); 5x faster than email.utils.formatdate,
    and a hot file's ``Last-Modified`` is formatted once."""
    return _http_date(int(timestamp))


@functools.lru_cache(maxsize=4096)
def _http_date(timestamp: int) -> str:
    t = time.gmtime(timestamp)
    return (f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT")


def etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    candidates = [tag.strip().removeprefix("W/").strip('"') for tag in header.split(",")]
    return etag in candidates


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The (start, end exclusive) of a single ``bytes=`` range, None to send everything."""
    if not header:
        return None
    match = _RANGE.match(header.strip().replace(" ", ""))
    if not match:
        return None  # multiple or unknown ranges: a full 200 is a valid answer
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        length = int(last)
        if length == 0:
            raise RangeNotSatisfiable("empty suffix range", headers={"Content-Range": f"bytes */{size}"})
        return max(0, size - length), size
    start = int(first)
    end = min(int(last) + 1, size) if last else size
    if start >= size or (last and int(last) < start):
        raise RangeNotSatisfiable(f"range {header} is outside 0-{size - 1}",
                                  headers={"Content-Range": f"bytes */{size}"})
    return start, end


def send_content(req: falcon.Request, resp: falcon.Response, *, etag: str, size: int, content_type: str,
                 opener: Callable[[], IO[bytes]], last_modified: float | None = None,
                 redirect: Callable[[], str | None] | None = None) -> None:
    """Answer a GET or HEAD for a stored body with conditional and range support.

    :param redirect: a direct URL of the bytes (a presigned object-store URL), or None; a GET of a body
        of at least :data:`REDIRECT_MIN_SIZE` is then answered with a 307 to it (the client sends its
        ``Range`` there again). HEADs and conditional answers stay here.
    """
    protect_content(resp)
    resp.set_header("ETag", f'"{etag}"')
    resp.set_header("Accept-Ranges", "bytes")
    if last_modified:
        resp.set_header("Last-Modified", http_date(last_modified))
    env = req.env  # the WSGI keys directly: falcon's get_header re-spells the name on every call
    if_none_match = env.get("HTTP_IF_NONE_MATCH")
    if etag_matches(if_none_match, etag) or (
            if_none_match is None and _not_modified_since(env.get("HTTP_IF_MODIFIED_SINCE"), last_modified)):
        # No Content-Type on a 304 (no body); falcon would otherwise add its default JSON one.
        resp.status = falcon.HTTP_304
        resp.content_type = None
        return
    if redirect is not None and req.method == "GET" and size >= REDIRECT_MIN_SIZE:
        location = redirect()
        if location:
            resp.status = falcon.HTTP_307
            resp.location = location
            resp.content_type = None
            resp.content_length = 0
            return
    resp.content_type = content_type
    span = None
    if_range = env.get("HTTP_IF_RANGE")
    if if_range is None or etag_matches(if_range, etag):
        span = parse_range(env.get("HTTP_RANGE"), size)
    start, end = span if span else (0, size)
    if span:
        resp.status = falcon.HTTP_206
        resp.set_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
    resp.content_length = end - start
    if req.method == "HEAD":
        return  # never open the file: falcon drops HEAD bodies without closing them
    stream = opener()
    if start:
        stream.seek(start)
    if end - start <= SMALL_BODY:
        # A small body costs less as bytes than through the server's file wrapper (one less buffer
        # object, no extra trip through the event loop).
        try:
            resp.data = read_exactly(stream, end - start)
        finally:
            stream.close()
        return
    # An open OS file goes to the server itself (its file wrapper streams it from the event loop without a
    # worker thread); a range that stops before the end needs a reader that stops there. Any other stream
    # (a blob store's network stream) must be read by the worker thread: the event loop would block on it,
    # and waitress's file wrapper seeks back after every read, which a network stream pays for dearly.
    resp.stream = stream if end == size and _is_os_file(stream) else BoundedReader(stream, end - start)


def _is_os_file(stream: IO[bytes]) -> bool:
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True


def read_exactly(stream: IO[bytes], length: int) -> bytes:
    """``length`` bytes of ``stream`` (a blob-store plugin's stream may return short reads)."""
    parts, remaining = [], length
    while remaining > 0:
        chunk = stream.read(remaining)
        if not chunk:
            raise StowageError(f"stored content ended {remaining} bytes early")
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


class BoundedReader:
    """Reads at most ``remaining`` bytes of ``stream``, then reports end of file."""

    def __init__(self, stream: IO[bytes], remaining: int):
        self._stream = stream
        self._remaining = remaining

    def read(self, size: int = -1) -> bytes:
        if self._remaining <= 0:
            return b""
        if size < 0 or size > self._remaining:
            size = self._remaining
        data = self._stream.read(size)
        self._remaining -= len(data)
        return data

    def close(self) -> None:
        self._stream.close()


#: ``Warning`` header of a proxy's cached copy served because the remote failed (RFC 7234 section 5.5.1).
STALE_WARNING = '110 - "Response is Stale"'


#: stored types a browser would run as a document (scripts, or markup that can hold them).
ACTIVE_TYPES = frozenset({"text/html", "application/xhtml+xml", "image/svg+xml", "text/xml", "application/xml",
                          "text/xsl", "application/xslt+xml", "text/javascript", "application/javascript",
                          "application/x-javascript", "application/ecmascript", "text/ecmascript",
                          "multipart/x-mixed-replace", "application/x-shockwave-flash"})


def served_type(recorded: str) -> str:
    """The type to serve an asset as when its format chose none: the recorded one (which may come from a
    remote or an uploader), unless a browser would run it as a document."""
    media_type = recorded.split(";")[0].strip().lower()
    if not media_type or media_type in ACTIVE_TYPES or media_type.endswith(("+xml", "/xml")):
        return "application/octet-stream"
    return recorded


def send_asset(req: falcon.Request, resp: falcon.Response, asset: Asset, opener: Callable[[], IO[bytes]],
               *, content_type: str | None = None, redirect: Callable[[str], str | None] | None = None) -> None:
    """Send an asset as ``content_type`` (the format's choice) or, without one, as :func:`served_type` of
    the type recorded with it."""
    if asset.cache_status:
        resp.set_header("X-Stowage-Cache", asset.cache_status)
        if asset.cache_status == "stale":
            resp.set_header("Warning", STALE_WARNING)
    if type(asset) is not Asset:  # the import only then: a stored asset is most of what is sent
        from stowage.proxy_flight import InFlightAsset

        if isinstance(asset, InFlightAsset):
            send_in_flight(req, resp, asset, content_type=content_type)
            return
    served = content_type or served_type(asset.content_type)
    send_content(req, resp, etag=asset.etag, size=asset.size, content_type=served, opener=opener,
                 last_modified=asset.last_updated or None,
                 redirect=(lambda: redirect(served)) if redirect is not None else None)


def send_in_flight(req: falcon.Request, resp: falcon.Response, asset: "InFlightAsset", *,
                   content_type: str | None = None) -> None:
    """Stream a proxy download while it arrives: a full 200 (no ETag or Range: the digest is not known
    yet). If the download fails, reading raises and the server cuts the connection.

    A HEAD answers at once with the remote's ``Content-Length``; when the remote sent none, it waits for
    the download to be verified and committed and answers as for a cached asset (exact length, ETag), or
    fails as a GET would."""
    if req.method == "HEAD" and asset.size is None:
        flight = asset.flight
        flight.wait_done()
        committed = flight.asset
        if not flight.committed or committed is None or flight.open_committed is None:
            raise flight.error or UpstreamError(f"{asset.path}: the download from the remote failed")
        send_content(req, resp, etag=committed.etag, size=committed.size,
                     content_type=content_type or served_type(committed.content_type), opener=flight.open_committed,
                     last_modified=committed.last_updated or None)
        return
    resp.content_type = content_type or served_type(asset.content_type)
    protect_content(resp)
    if asset.size is not None:
        resp.content_length = asset.size
    if req.method == "HEAD":
        return
    reader = asset.open()
    try:
        reader.prime()
    except BaseException:
        reader.close()
        raise
    resp.stream = reader


def _not_modified_since(header: str | None, last_modified: float | None) -> bool:
    if not header or not last_modified:
        return False
    try:
        return int(last_modified) <= parsedate_to_datetime(header).timestamp()
    except (TypeError, ValueError):
        return False

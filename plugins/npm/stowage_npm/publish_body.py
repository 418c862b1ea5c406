"""The ``npm publish`` body read as it arrives: the tarball's base64 goes straight into a staged blob.

A publish document is JSON with the tarball inside as one base64 string (``_attachments.<file>.data``),
a third larger than the tarball: parsing it whole held the body, the decoded text and the tarball in
memory (~310 MB of RSS for a 50 MiB package). Here ijson (yajl, in C) parses the body a piece at a time
into normal objects, and only that one string is taken out of the stream: base64-decoded piece by piece
into the writer :meth:`Repository.stage` gives, which hashes as it receives. No JSON library streams the
*value* of one string (ijson and json-stream both hand over whole strings; json-stream's "strings as
files" is an open wish, daggaz/json-stream#45), so this module finds string boundaries itself: outside a
string the only ``"`` starts one, inside it a ``"`` after an even run of backslashes ends it. Everything
else -- structure, escapes, numbers, UTF-8, trailing garbage -- is yajl's to check.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
from typing import IO, Any, Callable, ContextManager, Iterator

import ijson
from ijson.common import ObjectBuilder

from stowage.plugin import BadRequest, InvalidContent, StagedBlob

#: a string longer than this, at ``_attachments.<file>.data``, is decoded into the staged blob as it arrives.
STREAM_STRING_BYTES = 256 * 1024
#: nesting deeper than this is refused (the document is stored as JSON and served again).
MAX_DEPTH = 256
_READ_BYTES = 1024 * 1024
#: base64 characters decoded per step (a multiple of 4).
_B64_STEP = 4 * 256 * 1024

Stager = Callable[[], ContextManager[StagedBlob]]


class PublishBody:
    """The parsed document (:attr:`document`) and, if its attachment was streamed, the staged tarball
    (:attr:`tarball`, its ``data`` left as ``""`` in the document) and which attachment it is
    (:attr:`streamed`)."""

    def __init__(self, document: Any, tarball: StagedBlob | None, streamed: str | None):
        self.document = document
        self.tarball = tarball
        self.streamed = streamed


@contextlib.contextmanager
def read_publish_body(body: IO[bytes], limit: int, stage: Stager) -> Iterator[PublishBody]:
    """Parse ``body`` (at most ``limit`` bytes); the staged tarball, if any, is aborted unless the caller
    commits it inside the ``with``. ``stage`` is :meth:`Repository.stage`, called only for a streamed
    attachment."""
    with contextlib.ExitStack() as stack:
        reader = _Reader(stack, stage)
        total = 0
        while True:
            piece = body.read(_READ_BYTES)
            if not piece:
                break
            total += len(piece)
            if total > limit:
                raise BadRequest(f"request body is larger than the {limit} bytes allowed")
            reader.feed(piece)
        yield reader.finish()


class _Reader:
    def __init__(self, stack: contextlib.ExitStack, stage: Stager):
        self._stack = stack
        self._stage = stage
        self._events = ijson.sendable_list()
        self._parser = ijson.basic_parse_coro(self._events, use_float=True)
        self._builder = ObjectBuilder()
        self._keys: list[Any] = []  # per open container: the current key of a map, None in an array
        self._last_event = ""
        self._in_string = False
        self._pending = bytearray()  # a string's raw text (no quotes) not yet handed to the parser
        self._backslashes = 0  # how many backslashes end the string's text read so far
        self._decided = False  # this string was looked at for streaming already
        self._out: _Base64Sink | None = None  # the attachment being streamed, if any
        self._tarball: StagedBlob | None = None
        self._streamed: str | None = None

    # -- the byte stream ----------------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        start = 0
        while start < len(view):
            if not self._in_string:
                quote = data.find(b'"', start)
                if quote < 0:
                    self._send(view[start:])
                    return
                self._send(view[start:quote])
                self._in_string, self._pending, self._backslashes, self._decided = True, bytearray(), 0, False
                start = quote + 1
                continue
            end = self._closing_quote(data, start)
            text = view[start:len(view) if end < 0 else end]
            self._string_text(text)
            if end < 0:
                return
            self._close_string()
            start = end + 1

    def _closing_quote(self, data: bytes, start: int) -> int:
        """Where the open string ends in ``data`` (from ``start``), or -1; keeps the backslash count."""
        position = start
        while True:
            quote = data.find(b'"', position)
            if quote < 0:
                self._backslashes = _trailing_backslashes(data, start, len(data), self._backslashes)
                return -1
            run = _trailing_backslashes(data, start, quote, self._backslashes)
            if run % 2 == 0:
                return quote
            position = quote + 1

    def _string_text(self, text: memoryview) -> None:
        if self._out is not None:
            self._out.write(text)
            return
        self._pending += text
        if not self._decided and len(self._pending) > STREAM_STRING_BYTES:
            self._decided = True
            if self._at_attachment_data():
                self._tarball = self._stack.enter_context(self._stage())
                self._out = _Base64Sink(self._tarball)
                self._out.write(memoryview(self._pending))
                self._pending = bytearray()

    def _close_string(self) -> None:
        self._in_string = False
        if self._out is not None:
            self._out.close()
            self._out = None
            self._send(b'""')  # the document keeps the attachment, with its data already in the blob
            return
        self._send(b'"' + bytes(self._pending) + b'"')
        self._pending = bytearray()

    def _at_attachment_data(self) -> bool:
        """The parser stands at the value of the root's ``_attachments.<file>.data``, the first such."""
        keys = self._keys
        if self._streamed is not None or len(keys) != 3 or self._last_event != "map_key":
            return False
        if keys[0] != "_attachments" or keys[2] != "data" or not isinstance(keys[1], str):
            return False
        self._streamed = keys[1]
        return True

    # -- the parser -----------------------------------------------------------------------------------------

    def _send(self, data: bytes | memoryview) -> None:
        if not data:
            return
        try:
            self._parser.send(bytes(data))
        except ijson.JSONError as error:
            raise _invalid_json(error) from None
        self._take_events()

    def _take_events(self) -> None:
        for event, value in self._events:
            if event in ("start_map", "start_array"):
                if len(self._keys) >= MAX_DEPTH:
                    raise BadRequest("request body is not valid JSON: it is nested too deeply")
                self._keys.append(None)
            elif event in ("end_map", "end_array"):
                self._keys.pop()
            elif event == "map_key":
                self._keys[-1] = value
            self._builder.event(event, value)
            self._last_event = event
        del self._events[:]

    def finish(self) -> PublishBody:
        try:
            self._parser.close()
        except ijson.JSONError as error:
            raise _invalid_json(error) from None
        self._take_events()
        if not hasattr(self._builder, "value"):
            raise BadRequest("request body is not valid JSON: it is empty")
        return PublishBody(self._builder.value, self._tarball, self._streamed)


class _Base64Sink:
    """JSON string text (escapes allowed) in, decoded base64 bytes out to a staged blob."""

    def __init__(self, out: StagedBlob):
        self._out = out
        self._raw = bytearray()  # text not yet unescaped: may end inside an escape
        self._text = bytearray()  # unescaped base64 not yet decoded (less than one step, or not 4-aligned)

    def write(self, text: memoryview) -> None:
        self._raw += text
        cut = _escape_safe_end(self._raw)
        self._unescape(cut)
        self._decode(final=False)

    def close(self) -> None:
        self._unescape(len(self._raw))
        if self._raw:
            raise BadRequest("request body is not valid JSON: an escape in the tarball attachment is cut short")
        self._decode(final=True)

    def _unescape(self, cut: int) -> None:
        piece = bytes(self._raw[:cut])
        del self._raw[:cut]
        if b"\\" in piece:  # rare: "\/" is a valid way to write "/" in JSON
            try:
                piece = json.loads(b'"' + piece + b'"').encode("ascii")
            except (ValueError, UnicodeEncodeError) as error:
                raise InvalidContent(f"the tarball attachment is not valid base64: {error}") from None
        self._text += piece

    def _decode(self, *, final: bool) -> None:
        usable = len(self._text) if final else len(self._text) // _B64_STEP * _B64_STEP
        if not usable:
            return
        decode_base64(bytes(self._text[:usable]), self._out)
        del self._text[:usable]


def decode_base64(text: bytes | str, out: StagedBlob) -> None:
    """Decode one piece of the tarball attachment (whole base64 quanta) into ``out``."""
    try:
        out.write(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError) as error:
        raise InvalidContent(f"the tarball attachment is not valid base64: {error}") from None


def _invalid_json(error: Exception) -> BadRequest:
    """yajl's message, first line only (the rest draws the place in the text, for a terminal)."""
    message = error.args[0] if error.args else error
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    return BadRequest(f"request body is not valid JSON: {str(message).splitlines()[0] if message else error}")


def _trailing_backslashes(data: bytes | bytearray, start: int, end: int, before: int) -> int:
    """The run of backslashes ending at ``data[end]`` (not past ``start``; ``before`` more if it reaches it)."""
    position = end
    while position > start and data[position - 1] == 0x5C:
        position -= 1
    run = end - position
    return run + before if position == start else run


def _escape_safe_end(raw: bytearray) -> int:
    """How much of ``raw`` can be unescaped now: not a trailing, unfinished ``\\x`` or ``\\uXXXX``."""
    tail = max(0, len(raw) - 6)
    last = raw.rfind(b"\\", tail)
    if last < 0:
        return len(raw)
    run = _trailing_backslashes(raw, 0, last + 1, 0)
    if run % 2 == 0:  # "\\" ends there: a whole escape
        return len(raw)
    needed = 6 if raw[last + 1:last + 2] == b"u" else 2
    return last if len(raw) - last < needed else len(raw)

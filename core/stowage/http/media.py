"""Request-body handlers: falcon's, made to answer malformed input with a 4xx instead of an exception.

- JSON: ``json.loads`` raises :class:`RecursionError` for a body nested a few thousand levels deep; falcon only
  turns ``ValueError`` into a 400, so a 5,000-level array was a 500.
- multipart/form-data: falcon's parser needs the body's length up front and asserts it has one, so a
  multipart request without a length was a 500; it is a 411 Length Required. (The bundled server receives
  a chunked multipart body whole and passes its length on, so chunked uploads through ``stowage serve`` work.)
- A chunked body the bundled server streams has no length (:mod:`stowage.streamed_body`); falcon's
  ``bounded_stream`` would read nothing of it. :class:`StowageRequest` reads it to its end instead.
"""

from __future__ import annotations

import json
from typing import Any

import falcon
import falcon.media

from stowage.errors import LengthRequired
from stowage.streamed_body import BODY_UNTIL_EOF


def loads(text: str | bytes) -> Any:
    """``json.loads`` that raises :class:`ValueError` (never :class:`RecursionError`) for any bad input."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


class MultipartFormHandler(falcon.media.MultipartFormHandler):
    def deserialize(self, stream: Any, content_type: str | None, content_length: int | None) -> Any:
        if content_length is None:
            raise LengthRequired("a multipart/form-data body with a Content-Length is required")
        return super().deserialize(stream, content_type, content_length)


class StowageRequest(falcon.Request):
    """falcon's request, whose ``bounded_stream`` is the whole of a streamed body without a length."""

    @property
    def bounded_stream(self) -> Any:
        if BODY_UNTIL_EOF in self.env and self.content_length is None:
            return self.stream  # the server ends it at the last chunk
        return super().bounded_stream


def install_media_handlers(app: falcon.App) -> None:
    app.req_options.media_handlers[falcon.MEDIA_JSON] = falcon.media.JSONHandler(loads=loads)
    app.req_options.media_handlers[falcon.MEDIA_MULTIPART] = MultipartFormHandler()

"""JSON request bodies: parsed by falcon's handler, with too-deep nesting reported as malformed input.

``json.loads`` raises :class:`RecursionError` for a body nested a few thousand levels deep; falcon only
turns ``ValueError`` into a 400, so without this a 5,000-level array was a 500.
"""

from __future__ import annotations

import json
from typing import Any

import falcon
import falcon.media


def loads(text: str | bytes) -> Any:
    """``json.loads`` that raises :class:`ValueError` (never :class:`RecursionError`) for any bad input."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def install_json_handler(app: falcon.App) -> None:
    app.req_options.media_handlers[falcon.MEDIA_JSON] = falcon.media.JSONHandler(loads=loads)

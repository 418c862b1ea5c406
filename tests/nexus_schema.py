"""Validate REST answers against Nexus 3.91's own OpenAPI document (``tests/nexus/openapi-3.91.yml``).

The document is the REST contract (a copy of ``shared/nexus/openapi-3.91.yml``); an answer it describes
must validate against the schema it gives for that path, method and status.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import yaml
from openapi_schema_validator import OAS30Validator

DOCUMENT = Path(__file__).parent / "nexus" / "openapi-3.91.yml"


@functools.cache
def document() -> dict[str, Any]:
    return yaml.safe_load(DOCUMENT.read_text())


def schema_for(path: str, method: str = "get", status: str = "200") -> dict[str, Any] | None:
    """The JSON schema of the answer the document gives for a concrete ``/v1/...`` path, or None."""
    path = path.removeprefix("/service/rest")
    # literal segments beat parameters: /v1/repositories/raw/hosted/x is raw's, not /repositories/{name}/...
    for template, operations in sorted(document()["paths"].items(), key=lambda item: item[0].count("{")):
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path) and method in operations:
            content = operations[method].get("responses", {}).get(status, {}).get("content", {})
            schema = content.get("application/json", {}).get("schema")
            if schema is not None:
                return schema
    return None


def validate(path: str, body: Any, method: str = "get", status: str = "200") -> None:
    """Raise ``jsonschema.ValidationError`` unless ``body`` is what the document says ``path`` answers."""
    schema = schema_for(path, method, status)
    assert schema is not None, f"the document describes no JSON answer for {method.upper()} {path}"
    OAS30Validator({**schema, "components": document()["components"]}).validate(body)


def component(name: str) -> dict[str, Any]:
    return document()["components"]["schemas"][name]

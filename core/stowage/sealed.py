"""Secrets kept in the catalog (upstream passwords, LDAP bind passwords, S3 secret keys) are sealed with a
key derived from the node's secret key (:mod:`stowage.secret_key`), so a copy of the catalog (a backup, a
stolen file, a database dump) does not reveal them.

A sealed value is ``sealed:v1:`` followed by URL-safe base64 of a 12-byte nonce and the AES-GCM ciphertext
(which carries its authentication tag): a value sealed with another secret key fails to open with a clear
:class:`SealError` instead of yielding garbage. A value without the prefix is a legacy clear-text value and
is returned as it is (the start-up pass in :meth:`stowage.stowage.Stowage.seal_stored_secrets` seals them).
"""

from __future__ import annotations

import base64
import os
from typing import Any, Callable, Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "sealed:v1:"
_NONCE_BYTES = 12
#: HKDF ``info``: a key for this purpose only (the token signing keys are derived differently).
_INFO = b"stowage catalog secrets v1"


class SealError(Exception):
    """A sealed value that this node cannot open (sealed with another secret key, or damaged)."""


def is_sealed(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


class Sealer:
    """Seals and opens catalog secrets with the key derived from the node's secret key."""

    def __init__(self, secret_key: bytes):
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret_key)
        self._aead = AESGCM(key)

    def seal(self, value: str) -> str:
        """``value`` sealed; an already sealed value is returned unchanged (sealing twice is harmless)."""
        if is_sealed(value):
            return value
        nonce = os.urandom(_NONCE_BYTES)
        sealed = nonce + self._aead.encrypt(nonce, value.encode(), _INFO)
        return PREFIX + base64.urlsafe_b64encode(sealed).decode("ascii")

    def unseal(self, text: str) -> str:
        """The clear value of ``text``; a legacy clear-text value (no prefix) is returned as it is."""
        if not is_sealed(text):
            return text
        try:
            raw = base64.urlsafe_b64decode(text[len(PREFIX):].encode("ascii"))
            return self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _INFO).decode()
        except InvalidTag:
            raise SealError("it was sealed with another secret key (give every node the same [server] "
                            "secretKey / STOWAGE_SECRET_KEY / secret.key, or enter the secret again)") from None
        except (ValueError, UnicodeError):
            raise SealError("the sealed value is damaged") from None


def transform_paths(document: dict[str, Any], paths: Iterable[str], change: Callable[[str], str]) -> bool:
    """Apply ``change`` in place to the string values at the dotted ``paths`` of ``document`` that exist;
    True when any value changed."""
    changed = False
    for dotted in paths:
        *sections, key = dotted.split(".")
        parent: Any = document
        for section in sections:
            parent = parent.get(section) if isinstance(parent, dict) else None
        if isinstance(parent, dict) and isinstance(parent.get(key), str) and parent[key]:
            new = change(parent[key])
            if new != parent[key]:
                parent[key] = new
                changed = True
    return changed

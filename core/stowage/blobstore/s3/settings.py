"""The settings of an S3 blob store: Nexus's ``S3BlobStoreApiModel.bucketConfiguration``, checked once.

They live in ``BlobStoreConfig.attributes["bucketConfiguration"]`` (REST and TOML alike), shaped as Nexus
sends them: ``bucket.{name,region,prefix}``, ``bucketSecurity.{accessKeyId,secretAccessKey,sessionToken,
role}``, ``advancedBucketConnection.{endpoint,forcePathStyle,signerType,maxConnectionPoolSize}`` and
``preSignedUrlEnabled``. Stowage's own additions (``advancedBucketConnection.multipartPartSize``,
``redirectDownloads``) are named in docs/scaling.md.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from attrs import field, frozen

from stowage.errors import ConfigurationError

MIB = 1024 * 1024
#: S3 refuses parts below 5 MiB (except the last) and above 5 GiB.
MIN_PART_SIZE = 5 * MIB
MAX_PART_SIZE = 5 * 1024 * MIB
DEFAULT_PART_SIZE = 16 * MIB
#: Nexus's signer names, and botocore's for the same signatures.
SIGNERS = {"": None, "DEFAULT": None, "S3SignerType": "s3", "AWSS3V4SignerType": "s3v4", "s3": "s3", "s3v4": "s3v4"}
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PREFIX = re.compile(r"^[A-Za-z0-9!_.*'()/-]{0,512}$")
_SECTIONS = {
    "bucket": {"name", "region", "prefix", "expiration"},
    "bucketSecurity": {"accessKeyId", "secretAccessKey", "sessionToken", "role"},
    "advancedBucketConnection": {"endpoint", "forcePathStyle", "signerType", "maxConnectionPoolSize",
                                 "multipartPartSize"},
}
_FLAGS = {"preSignedUrlEnabled", "redirectDownloads"}
#: read-only fields Nexus returns; a client that PUTs back what it GOT sends them, so they are ignored.
_READ_ONLY = {"activeRegion", "failoverBuckets", "encryption"}
SECRETS = ("secretAccessKey", "sessionToken")


@frozen
class S3Settings:
    bucket: str
    region: str = ""
    prefix: str = ""
    access_key_id: str = ""
    secret_access_key: str = field(default="", repr=False)
    session_token: str = field(default="", repr=False)
    role: str = ""
    endpoint: str = ""
    force_path_style: bool = False
    signer_type: str = ""
    max_connection_pool_size: int = 0
    part_size: int = DEFAULT_PART_SIZE
    #: answer downloads with a 307 to a presigned GetObject URL instead of relaying the bytes.
    redirect_downloads: bool = False

    @property
    def key_prefix(self) -> str:
        """The prefix every key of this store starts with: empty, or ending with ``/``."""
        prefix = self.prefix.strip("/")
        return f"{prefix}/" if prefix else ""


def _section(data: Mapping[str, Any], name: str, where: str) -> Mapping[str, Any]:
    value = data.get(name) or {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{where}.{name} must be an object")
    unknown = set(value) - _SECTIONS[name]
    if unknown:
        raise ConfigurationError(f"{where}.{name}: unknown key(s) {', '.join(sorted(unknown))}; expected "
                                 f"{', '.join(sorted(_SECTIONS[name]))}")
    return value


def _text(section: Mapping[str, Any], key: str, where: str) -> str:
    value = section.get(key)
    if value is None:
        return ""
    if not isinstance(value, str) or "\0" in value or len(value) > 2048:
        raise ConfigurationError(f"{where}.{key} must be a string")
    return value


def _integer(section: Mapping[str, Any], key: str, where: str, low: int, high: int, default: int) -> int:
    value = section.get(key)
    if value in (None, 0):
        return default
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ConfigurationError(f"{where}.{key} must be a whole number from {low} to {high}")
    return value


def _flag(data: Mapping[str, Any], key: str, where: str) -> bool:
    value = data.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ConfigurationError(f"{where}.{key} must be true or false")
    return value


def parse_s3_settings(attributes: Mapping[str, Any], where: str = "bucketConfiguration") -> S3Settings:
    """Check ``attributes["bucketConfiguration"]`` and return it typed; errors name the offending key."""
    data = attributes.get("bucketConfiguration")
    if not isinstance(data, Mapping):
        raise ConfigurationError(f"{where} is required (an object with bucket.name)")
    unknown = set(data) - set(_SECTIONS) - _FLAGS - _READ_ONLY
    if unknown:
        raise ConfigurationError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    bucket = _section(data, "bucket", where)
    security = _section(data, "bucketSecurity", where)
    advanced = _section(data, "advancedBucketConnection", where)
    name = _text(bucket, "name", f"{where}.bucket")
    if not _BUCKET.match(name) or ".." in name:
        raise ConfigurationError(f"{where}.bucket.name must be an S3 bucket name (3-63 of a-z, 0-9, '.', '-')")
    prefix = _text(bucket, "prefix", f"{where}.bucket")
    if not _PREFIX.match(prefix) or any(part in (".", "..") for part in prefix.split("/")):
        raise ConfigurationError(f"{where}.bucket.prefix may hold letters, digits and !_.*'()/- only")
    region = _text(bucket, "region", f"{where}.bucket")
    endpoint = _text(advanced, "endpoint", f"{where}.advancedBucketConnection")
    if endpoint and not re.match(r"^https?://[^\s/?#]+(/[^\s?#]*)?$", endpoint):
        raise ConfigurationError(f"{where}.advancedBucketConnection.endpoint must be an http(s) URL")
    signer = _text(advanced, "signerType", f"{where}.advancedBucketConnection")
    if signer not in SIGNERS:
        raise ConfigurationError(f"{where}.advancedBucketConnection.signerType must be one of "
                                 f"{', '.join(s for s in SIGNERS if s)}")
    force_path_style = advanced.get("forcePathStyle", False)
    if not isinstance(force_path_style, bool):
        raise ConfigurationError(f"{where}.advancedBucketConnection.forcePathStyle must be true or false")
    access_key = _text(security, "accessKeyId", f"{where}.bucketSecurity")
    secret = _text(security, "secretAccessKey", f"{where}.bucketSecurity")
    if bool(access_key) != bool(secret):
        raise ConfigurationError(f"{where}.bucketSecurity: accessKeyId and secretAccessKey go together")
    return S3Settings(
        bucket=name, region="" if region == "DEFAULT" else region, prefix=prefix,
        access_key_id=access_key, secret_access_key=secret,
        session_token=_text(security, "sessionToken", f"{where}.bucketSecurity"),
        role=_text(security, "role", f"{where}.bucketSecurity"), endpoint=endpoint.rstrip("/"),
        force_path_style=force_path_style, signer_type=signer,
        max_connection_pool_size=_integer(advanced, "maxConnectionPoolSize", f"{where}.advancedBucketConnection",
                                          1, 1000, 0),
        part_size=_integer(advanced, "multipartPartSize", f"{where}.advancedBucketConnection",
                           MIN_PART_SIZE, MAX_PART_SIZE, DEFAULT_PART_SIZE),
        redirect_downloads=_flag(data, "preSignedUrlEnabled", where) or _flag(data, "redirectDownloads", where))


def public_bucket_configuration(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """``bucketConfiguration`` as the REST API returns it: the secrets left out."""
    data = {key: (dict(value) if isinstance(value, Mapping) else value)
            for key, value in (attributes.get("bucketConfiguration") or {}).items()}
    security = data.get("bucketSecurity")
    if security:
        data["bucketSecurity"] = {k: v for k, v in security.items() if k not in SECRETS}
    return data


def keep_secrets(new: Mapping[str, Any], old: Mapping[str, Any]) -> dict[str, Any]:
    """``new`` with the secrets of ``old`` where an update left them out (the REST API never returns them),
    as long as the access key stays the same."""
    merged = {key: (dict(value) if isinstance(value, Mapping) else value) for key, value in new.items()}
    old_security = old.get("bucketSecurity") or {}
    security = dict(merged.get("bucketSecurity") or {})
    if old_security and security.get("accessKeyId", old_security.get("accessKeyId")) == old_security.get("accessKeyId"):
        for key in SECRETS:
            if not security.get(key) and old_security.get(key):
                security[key] = old_security[key]
        if security:
            security.setdefault("accessKeyId", old_security.get("accessKeyId", ""))
            merged["bucketSecurity"] = {k: v for k, v in security.items() if v}
    return merged

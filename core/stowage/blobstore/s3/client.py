"""Building the boto3 S3 client of one store (boto3 is the ``stowage[s3]`` extra, imported only here).

boto3 because it is AWS's own SDK, kept current with S3's signing and error rules, and speaks to every
S3-compatible server we care about (MinIO, Ceph RGW, Garage) through ``endpoint_url`` + path-style
addressing; its managed copy does multipart server-side copies of objects above 5 GiB for us.
"""

from __future__ import annotations

from typing import Any

from stowage.blobstore.s3.settings import SIGNERS, S3Settings
from stowage.errors import ConfigurationError


def import_boto3() -> Any:
    try:
        import boto3
    except ImportError:  # pragma: no cover - depends on the installation
        raise ConfigurationError("S3 blob stores need boto3: pip install 'stowage[s3]'") from None
    return boto3


def make_client(settings: S3Settings, *, pool_size: int) -> Any:
    """A thread-safe S3 client for ``settings`` (credentials from the settings, else boto3's usual chain)."""
    boto3 = import_boto3()
    from botocore.config import Config

    config = Config(
        region_name=settings.region or "us-east-1",
        signature_version=SIGNERS[settings.signer_type],
        s3={"addressing_style": "path" if settings.force_path_style else "auto"},
        max_pool_connections=settings.max_connection_pool_size or pool_size,
        retries={"max_attempts": 5, "mode": "standard"},
        connect_timeout=10, read_timeout=120,
        # Newer botocore adds CRC checksums to every upload; Ceph RGW, Garage and older MinIO refuse or
        # mishandle them. Stowage checks sha256 itself, so only send them where S3 requires one.
        request_checksum_calculation="when_required", response_checksum_validation="when_required")
    session = boto3.session.Session(
        aws_access_key_id=settings.access_key_id or None, aws_secret_access_key=settings.secret_access_key or None,
        aws_session_token=settings.session_token or None)
    if settings.role:
        session = _assume_role(boto3, session, settings, config)
    return session.client("s3", endpoint_url=settings.endpoint or None, config=config)


def _assume_role(boto3: Any, base: Any, settings: S3Settings, config: Any) -> Any:
    """A session whose credentials are the role's, renewed by botocore before they expire."""
    from botocore.credentials import DeferredRefreshableCredentials
    from botocore.session import get_session

    # MinIO and Ceph answer STS AssumeRole on their S3 endpoint; AWS on its own STS endpoint.
    sts = base.client("sts", region_name=settings.region or "us-east-1", endpoint_url=settings.endpoint or None,
                      config=config)

    def fetch() -> dict[str, str]:
        found = sts.assume_role(RoleArn=settings.role, RoleSessionName="stowage")["Credentials"]
        return {"access_key": found["AccessKeyId"], "secret_key": found["SecretAccessKey"],
                "token": found["SessionToken"], "expiry_time": found["Expiration"].isoformat()}

    core = get_session()
    core._credentials = DeferredRefreshableCredentials(refresh_using=fetch, method="assume-role")
    return boto3.session.Session(botocore_session=core)

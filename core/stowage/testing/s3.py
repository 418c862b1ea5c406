"""An S3 API server for tests: moto in server mode on a loopback port, or a real one named by the
environment (``STOWAGE_TEST_S3_ENDPOINT``, ``STOWAGE_TEST_S3_ACCESS_KEY``, ``STOWAGE_TEST_S3_SECRET_KEY``,
optional ``STOWAGE_TEST_S3_REGION``), e.g. a MinIO started by hand. Each test gets a bucket of its own,
emptied and removed afterwards.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from typing import Any, Iterator

from attrs import frozen

#: the moto launcher: binds port 0 on loopback, prints the port, serves until its stdin closes.
_MOTO = """
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
"""


@frozen
class S3TestServer:
    endpoint: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key, region_name=self.region,
                            config=Config(s3={"addressing_style": "path"}))

    def bucket_configuration(self, bucket: str, *, prefix: str = "", **advanced: Any) -> dict[str, Any]:
        """Nexus's ``bucketConfiguration`` for ``bucket`` on this server (path-style addressing)."""
        redirect = advanced.pop("redirectDownloads", None)
        found: dict[str, Any] = {
            "bucket": {"name": bucket, "region": self.region, "prefix": prefix},
            "bucketSecurity": {"accessKeyId": self.access_key, "secretAccessKey": self.secret_key},
            "advancedBucketConnection": {"endpoint": self.endpoint, "forcePathStyle": True, **advanced}}
        if redirect is not None:
            found["redirectDownloads"] = redirect
        return found

    def toml(self, name: str, bucket: str, *, prefix: str = "", part_size: int = 0,
             redirect: bool = False) -> str:
        """A ``[[blobStores]]`` entry for the configuration file."""
        lines = [
            "[[blobStores]]", f'name = "{name}"', 'type = "S3"',
            "[blobStores.bucketConfiguration]", f"redirectDownloads = {'true' if redirect else 'false'}",
            "[blobStores.bucketConfiguration.bucket]", f'name = "{bucket}"', f'region = "{self.region}"',
            f'prefix = "{prefix}"',
            "[blobStores.bucketConfiguration.bucketSecurity]", f'accessKeyId = "{self.access_key}"',
            f'secretAccessKey = "{self.secret_key}"',
            "[blobStores.bucketConfiguration.advancedBucketConnection]", f'endpoint = "{self.endpoint}"',
            "forcePathStyle = true"]
        if part_size:
            lines.append(f"multipartPartSize = {part_size}")
        return "\n".join(lines) + "\n"

    def create_bucket(self) -> str:
        name = f"stowage-test-{secrets.token_hex(6)}"
        client = self.client()
        if self.region == "us-east-1":
            client.create_bucket(Bucket=name)
        else:
            client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": self.region})
        return name

    def remove_bucket(self, name: str) -> None:
        client = self.client()
        for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=name):
            for upload in page.get("Uploads", ()):
                client.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
            for item in page.get("Contents", ()):
                client.delete_object(Bucket=name, Key=item["Key"])
        client.delete_bucket(Bucket=name)

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        client = self.client()
        return sorted(item["Key"] for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix) for item in page.get("Contents", ()))

    def multipart_uploads(self, bucket: str) -> list[str]:
        pages = self.client().get_paginator("list_multipart_uploads").paginate(Bucket=bucket)
        return [upload["Key"] for page in pages for upload in page.get("Uploads", ())]


def start_s3_server() -> Iterator[S3TestServer]:
    """The environment's S3 server, else moto started for the duration of the generator."""
    endpoint = os.environ.get("STOWAGE_TEST_S3_ENDPOINT")
    if endpoint:
        yield S3TestServer(endpoint=endpoint.rstrip("/"), access_key=os.environ["STOWAGE_TEST_S3_ACCESS_KEY"],
                           secret_key=os.environ["STOWAGE_TEST_S3_SECRET_KEY"],
                           region=os.environ.get("STOWAGE_TEST_S3_REGION", "us-east-1"))
        return
    process = subprocess.Popen([sys.executable, "-c", _MOTO], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    try:
        port = int(process.stdout.readline())  # type: ignore[union-attr]
        yield S3TestServer(endpoint=f"http://127.0.0.1:{port}", access_key="stowage-test",
                           secret_key="stowage-test-secret")
    finally:
        process.stdin.close()  # type: ignore[union-attr]
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

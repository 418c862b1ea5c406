"""The S3 blob store behind a live ``stowage serve``: configuration file and REST API, raw up/down with
Range through curl, bounded memory, presigned redirects, and blob GC on the bucket."""

from __future__ import annotations

import time

import pytest
import urllib3

from core_helpers import RAW_HOSTED, RssSampler, curl, sha256_file, write_sparse_random
from stowage.testing.harness import basic_auth

V1 = "/service/rest/v1"
MIB = 1 << 20
RSS_LIMIT_KIB = 150 * 1024

pytest.importorskip("boto3")


def s3_config(s3_server, bucket, *, redirect=False, grace=3600) -> str:
    return (f"[server]\nblobGcGraceSeconds = {grace}\n"
            + s3_server.toml("objects", bucket, prefix="stowage/", redirect=redirect)
            + RAW_HOSTED.replace('blobStoreName = "default"', 'blobStoreName = "objects"'))


def test_raw_round_trip_on_s3_streams_with_flat_memory_and_honours_range(serve_factory, s3_server, s3_bucket,
                                                                         tmp_path):
    server = serve_factory(s3_config(s3_server, s3_bucket))
    source = tmp_path / "big.bin"
    size = 64 * MIB + 123
    digest = write_sparse_random(source, size, seed=5)
    url = f"{server.url}/repository/raw-hosted-dev/s3/big.bin"
    with RssSampler(server.rss_kib) as upload_rss:
        assert curl("-u", f"admin:{server.password}", "--upload-file", str(source), "-o", "/dev/null",
                    "-w", "%{http_code}", url).stdout == "201"
    keys = s3_server.keys(s3_bucket)
    assert keys == [f"stowage/blobs/{digest[:2]}/{digest[2:4]}/{digest}"], keys  # no temporary object left
    assert s3_server.multipart_uploads(s3_bucket) == []

    target = tmp_path / "down.bin"
    started = time.monotonic()
    with RssSampler(server.rss_kib) as download_rss:
        assert curl("-o", str(target), "-w", "%{http_code}", url).stdout == "200"
    # ~1 s on a loaded 2-core machine; 50 s when the server's file wrapper re-opened the object for
    # every block it sent (it seeks back after each read)
    assert time.monotonic() - started < 20
    assert sha256_file(target) == digest
    print(f"S3 64 MiB raw round trip: peak RSS upload {upload_rss.peak_kib} KiB, download {download_rss.peak_kib} KiB")
    assert upload_rss.peak_kib < RSS_LIMIT_KIB, f"upload peak RSS {upload_rss.peak_kib} KiB"
    assert download_rss.peak_kib < RSS_LIMIT_KIB, f"download peak RSS {download_rss.peak_kib} KiB"

    with open(source, "rb") as handle:
        handle.seek(40 * MIB + 7)
        expected = handle.read(1000)
    part = tmp_path / "part.bin"
    answer = curl("-r", f"{40 * MIB + 7}-{40 * MIB + 1006}", "-o", str(part), "-w", "%{http_code}", url)
    assert answer.stdout == "206" and part.read_bytes() == expected
    assert curl("-r", "-10", "-o", str(part), "-w", "%{http_code}", url).stdout == "206"
    assert part.read_bytes() == source.read_bytes()[-10:]
    assert curl("-r", f"{size + 5}-", "-o", "/dev/null", "-w", "%{http_code}", url).stdout == "416"
    # a small one takes the single-PUT path
    assert curl("-u", f"admin:{server.password}", "--data-binary", "tiny", "-X", "PUT", "-o", "/dev/null",
                "-w", "%{http_code}", f"{server.url}/repository/raw-hosted-dev/s3/tiny.txt").stdout == "201"
    assert curl(f"{server.url}/repository/raw-hosted-dev/s3/tiny.txt").stdout == "tiny"


def test_redirect_downloads_answer_307_to_a_presigned_url(serve_factory, s3_server, s3_bucket, tmp_path):
    server = serve_factory(s3_config(s3_server, s3_bucket, redirect=True))
    source = tmp_path / "two.bin"
    digest = write_sparse_random(source, 2 * MIB, seed=6)
    url = f"{server.url}/repository/raw-hosted-dev/r/two.bin"
    assert curl("-u", f"admin:{server.password}", "--upload-file", str(source), "-o", "/dev/null",
                "-w", "%{http_code}", url).stdout == "201"
    answer = urllib3.request("GET", url, redirect=False)
    assert answer.status == 307
    location = answer.headers["Location"]
    assert location.startswith(s3_server.endpoint) and ("Signature=" in location or "X-Amz-Signature=" in location)
    head = urllib3.request("HEAD", url, redirect=False)  # HEAD stays here, with the length
    assert head.status == 200 and head.headers["Content-Length"] == str(2 * MIB)
    target = tmp_path / "got.bin"
    assert curl("-L", "-o", str(target), "-w", "%{http_code}", url).stdout == "200"
    assert sha256_file(target) == digest
    assert curl("-L", "-r", "10-19", "-o", str(target), "-w", "%{http_code}", url).stdout == "206"
    assert target.read_bytes() == source.read_bytes()[10:20]
    # small bodies are relayed (no extra round trip)
    assert curl("-u", f"admin:{server.password}", "--data-binary", "small", "-X", "PUT", "-o", "/dev/null",
                f"{server.url}/repository/raw-hosted-dev/r/small.txt").returncode == 0
    small = urllib3.request("GET", f"{server.url}/repository/raw-hosted-dev/r/small.txt", redirect=False)
    assert small.status == 200 and small.data == b"small"


def test_blob_gc_on_s3_deletes_what_no_asset_references(serve_factory, s3_server, s3_bucket, tmp_path):
    server = serve_factory(s3_config(s3_server, s3_bucket, grace=0))
    admin = basic_auth("admin", server.password)
    base = f"{server.url}/repository/raw-hosted-dev"
    assert urllib3.request("PUT", f"{base}/keep.bin", body=b"k" * 100, headers=admin).status == 201
    assert urllib3.request("PUT", f"{base}/drop.bin", body=b"d" * (6 * MIB), headers=admin).status == 201
    assert len(s3_server.keys(s3_bucket, "stowage/blobs/")) == 2
    assert urllib3.request("DELETE", f"{base}/drop.bin", headers=admin).status == 204
    # an orphan (no catalog row, as after a crash between storing and recording) and a stale temp object
    s3_server.client().put_object(Bucket=s3_bucket, Key="stowage/blobs/ee/ee/" + "e" * 64, Body=b"orphan")
    time.sleep(1.1)
    assert urllib3.request("POST", f"{server.url}{V1}/tasks/blobstore.compact/run", headers=admin).status == 204
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        task = urllib3.request("GET", f"{server.url}{V1}/tasks/blobstore.compact", headers=admin).json()
        if task["currentState"] == "WAITING" and task["lastRunResult"]:
            break
        time.sleep(0.1)
    assert task["lastRunResult"] == "OK", task
    import hashlib
    keep = hashlib.sha256(b"k" * 100).hexdigest()
    assert s3_server.keys(s3_bucket, "stowage/blobs/") == [f"stowage/blobs/{keep[:2]}/{keep[2:4]}/{keep}"]
    assert urllib3.request("GET", f"{base}/keep.bin").data == b"k" * 100


def test_s3_blob_stores_through_the_rest_api(stowage_factory, live_server_factory, s3_server, s3_bucket):
    ts = stowage_factory()
    live = live_server_factory(ts)
    admin = basic_auth("admin", ts.admin_password)
    configuration = s3_server.bucket_configuration(s3_bucket, prefix="rest")
    body = {"name": "s3-one", "softQuota": {"type": "spaceUsedQuota", "limit": 1000},
            "bucketConfiguration": configuration}
    assert urllib3.request("POST", f"{live.url}{V1}/blobstores/s3", json=body, headers=admin).status == 204
    assert urllib3.request("POST", f"{live.url}{V1}/blobstores/s3", json=body, headers=admin).status == 400
    got = urllib3.request("GET", f"{live.url}{V1}/blobstores/s3/s3-one", headers=admin).json()
    assert got["type"] == "S3" and got["softQuota"] == body["softQuota"]
    assert got["bucketConfiguration"]["bucket"] == {"name": s3_bucket, "region": s3_server.region, "prefix": "rest"}
    assert got["bucketConfiguration"]["bucketSecurity"] == {"accessKeyId": s3_server.access_key}  # no secret
    listed = {b["name"]: b for b in urllib3.request("GET", f"{live.url}{V1}/blobstores", headers=admin).json()}
    assert listed["s3-one"]["type"] == "S3"
    assert urllib3.request("GET", f"{live.url}{V1}/blobstores/file/s3-one", headers=admin).status == 404
    assert urllib3.request("GET", f"{live.url}{V1}/blobstores/s3/default", headers=admin).status == 404

    # PUT back what GET returned (no secret): the secret is kept, the store keeps working
    got["bucketConfiguration"]["advancedBucketConnection"]["maxConnectionPoolSize"] = 8
    assert urllib3.request("PUT", f"{live.url}{V1}/blobstores/s3/s3-one", json=got, headers=admin).status == 204
    assert urllib3.request("POST", f"{live.url}{V1}/repositories/raw/hosted", headers=admin, json={
        "name": "raw-s3", "online": True, "storage": {"blobStoreName": "s3-one"}}).status in (200, 201, 204)
    assert urllib3.request("PUT", f"{live.url}/repository/raw-s3/a.txt", body=b"hello", headers=admin).status == 201
    assert urllib3.request("GET", f"{live.url}/repository/raw-s3/a.txt").data == b"hello"
    assert [k for k in s3_server.keys(s3_bucket) if k.startswith("rest/blobs/")]

    moved = {**got, "bucketConfiguration": {**got["bucketConfiguration"],
                                            "bucket": {**got["bucketConfiguration"]["bucket"], "prefix": "x"}}}
    assert urllib3.request("PUT", f"{live.url}{V1}/blobstores/s3/s3-one", json=moved, headers=admin).status == 400
    for hostile in ({"name": "bad", "bucketConfiguration": {"bucket": {"name": "UPPER_case"}}},
                    {"name": "bad", "bucketConfiguration": {"bucket": {"name": s3_bucket, "prefix": "../up"}}},
                    {"name": "bad", "bucketConfiguration": {"bucket": {"name": s3_bucket}, "surprise": 1}},
                    {"name": "bad", "bucketConfiguration": {"bucket": {"name": s3_bucket},
                                                            "advancedBucketConnection": {"endpoint": "file:///etc"}}},
                    {"name": "bad", "bucketConfiguration": "s3://x"},
                    {"name": "bad"},
                    {"name": "bad", "bucketConfiguration": {**configuration, "advancedBucketConnection": {
                        "endpoint": "http://127.0.0.1:9", "forcePathStyle": True}}}):
        answer = urllib3.request("POST", f"{live.url}{V1}/blobstores/s3", json=hostile, headers=admin,
                                 retries=False, timeout=60)
        assert answer.status == 400, (hostile, answer.data)
    names = {b["name"] for b in urllib3.request("GET", f"{live.url}{V1}/blobstores", headers=admin).json()}
    assert "bad" not in names
    assert urllib3.request("POST", f"{live.url}{V1}/blobstores/s3", json=body,
                           headers=basic_auth("admin", "wrong")).status == 401


def test_a_proxy_on_s3_serves_concurrent_cold_misses_once_verified(stowage_factory, live_server_factory,
                                                                    fault_upstream, s3_server, s3_bucket):
    """S3 cannot read an object while it is written: clients of a cold miss get the committed blob."""
    import concurrent.futures
    import hashlib
    import os

    from stowage.blobstore import BlobStoreConfig

    store = BlobStoreConfig(name="s3", type="S3", attributes={
        "bucketConfiguration": s3_server.bucket_configuration(s3_bucket, prefix="proxy")})
    ts = stowage_factory(blob_stores=[store], repositories=[dict(
        name="raw-proxy", format="raw", type="proxy", proxy={"remoteUrl": fault_upstream.url},
        storage={"blobStoreName": "s3"})])
    live = live_server_factory(ts)
    body = os.urandom(6 * MIB)
    fault_upstream.put("dist/big.bin", body)
    url = f"{live.url}/repository/raw-proxy/dist/big.bin"
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: urllib3.request("GET", url, timeout=60), range(6)))
    assert [a.status for a in answers] == [200] * 6
    assert all(a.data == body for a in answers)
    assert fault_upstream.count("dist/big.bin") == 1
    digest = hashlib.sha256(body).hexdigest()
    assert s3_server.keys(s3_bucket, "proxy/blobs/") == [f"proxy/blobs/{digest[:2]}/{digest[2:4]}/{digest}"]
    fault_upstream.put("dist/broken.bin", body)
    fault_upstream.fault("cut", "dist/broken.bin", at=MIB + 7 * 1024 * 1024 // 2)
    broken = urllib3.request("GET", f"{live.url}/repository/raw-proxy/dist/broken.bin", timeout=60, retries=False)
    assert broken.status == 502
    assert s3_server.keys(s3_bucket, "proxy/tmp/") == [] and s3_server.multipart_uploads(s3_bucket) == []


@pytest.mark.slow
def test_kill_9_mid_upload_to_s3_leaves_nothing_visible_and_the_sweep_cleans_up(serve_factory, s3_server,
                                                                                s3_bucket, tmp_path):
    import subprocess

    from stowage.blobstore import BlobStoreConfig
    from stowage.blobstore.s3 import S3BlobStore

    data_dir = tmp_path / "data"
    config = s3_config(s3_server, s3_bucket)
    server = serve_factory(config, data_dir=data_dir)
    source = tmp_path / "big.bin"
    digest = write_sparse_random(source, 64 * MIB, seed=9)
    url = f"{server.url}/repository/raw-hosted-dev/crash/big.bin"
    uploader = subprocess.Popen(["curl", "-sS", "--limit-rate", "20M", "-u", f"admin:{server.password}",
                                 "--upload-file", str(source), "-o", "/dev/null", url],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not s3_server.multipart_uploads(s3_bucket) and time.monotonic() < deadline:
            time.sleep(0.05)  # until a part has been sent
        assert s3_server.multipart_uploads(s3_bucket), server.log()
        server.crash()  # the supervisor and every worker, mid-upload
    finally:
        uploader.wait(30)
    assert s3_server.keys(s3_bucket, "stowage/blobs/") == []  # nothing visible under a digest
    restarted = serve_factory(config, data_dir=data_dir)
    assert curl("-o", "/dev/null", "-w", "%{http_code}", url.replace(server.url, restarted.url)).stdout == "404"
    assert curl("-u", f"admin:{restarted.password}", "--upload-file", str(source), "-o", "/dev/null", "-w",
                "%{http_code}", url.replace(server.url, restarted.url)).stdout == "201"
    assert s3_server.keys(s3_bucket, "stowage/blobs/") == [f"stowage/blobs/{digest[:2]}/{digest[2:4]}/{digest}"]
    # the dead process's multipart upload is swept once stale (here: at once)
    store = S3BlobStore(BlobStoreConfig(name="objects", type="S3", attributes={
        "bucketConfiguration": s3_server.bucket_configuration(s3_bucket, prefix="stowage/")}), spool_dir=tmp_path)
    assert store.sweep_temp_files(older_than=-1) >= 1
    assert s3_server.multipart_uploads(s3_bucket) == [] and s3_server.keys(s3_bucket, "stowage/tmp/") == []


def test_a_store_from_the_configuration_file_is_changed_there_not_through_rest(stowage_factory, live_server_factory,
                                                                                s3_server, s3_bucket):
    from stowage.blobstore import BlobStoreConfig

    configured = BlobStoreConfig(name="from-file", type="S3", attributes={
        "bucketConfiguration": s3_server.bucket_configuration(s3_bucket)})
    ts = stowage_factory(blob_stores=[configured])
    live = live_server_factory(ts)
    admin = basic_auth("admin", ts.admin_password)
    got = urllib3.request("GET", f"{live.url}{V1}/blobstores/s3/from-file", headers=admin).json()
    assert "secretAccessKey" not in got["bucketConfiguration"]["bucketSecurity"]
    answer = urllib3.request("PUT", f"{live.url}{V1}/blobstores/s3/from-file", json=got, headers=admin)
    assert answer.status == 400 and b"configuration file" in answer.data
    assert urllib3.request("DELETE", f"{live.url}{V1}/blobstores/from-file", headers=admin).status == 400

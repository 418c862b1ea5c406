"""S3 blob store settings: Nexus's bucketConfiguration parsed or refused with a message naming the key."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stowage.blobstore.s3.settings import (DEFAULT_PART_SIZE, keep_secrets, parse_s3_settings,
                                           public_bucket_configuration)
from stowage.errors import ConfigurationError
from stowage.serialization import make_converter
from stowage.settings import load_config_file

FULL = {"bucket": {"name": "my-bucket", "region": "eu-west-1", "prefix": "/a/b/"},
        "bucketSecurity": {"accessKeyId": "AK", "secretAccessKey": "SK", "sessionToken": "ST", "role": ""},
        "advancedBucketConnection": {"endpoint": "https://s3.example:9000/", "forcePathStyle": True,
                                     "signerType": "AWSS3V4SignerType", "maxConnectionPoolSize": 7,
                                     "multipartPartSize": 8 << 20},
        "preSignedUrlEnabled": True, "activeRegion": "eu-west-1", "failoverBuckets": []}


def test_every_field_is_read():
    found = parse_s3_settings({"bucketConfiguration": FULL})
    assert (found.bucket, found.region, found.key_prefix) == ("my-bucket", "eu-west-1", "a/b/")
    assert (found.access_key_id, found.secret_access_key, found.session_token) == ("AK", "SK", "ST")
    assert (found.endpoint, found.force_path_style, found.signer_type) == ("https://s3.example:9000", True,
                                                                          "AWSS3V4SignerType")
    assert (found.max_connection_pool_size, found.part_size, found.redirect_downloads) == (7, 8 << 20, True)
    minimal = parse_s3_settings({"bucketConfiguration": {"bucket": {"name": "abc", "region": "DEFAULT"}}})
    assert (minimal.region, minimal.key_prefix, minimal.part_size) == ("", "", DEFAULT_PART_SIZE)
    assert "SK" not in repr(found)


@pytest.mark.parametrize("change, named", [
    ({"bucket": {"name": "Bad_Name"}}, "bucket.name"),
    ({"bucket": {"name": "abc", "prefix": "a/../b"}}, "bucket.prefix"),
    ({"bucket": {"name": "abc", "colour": "red"}}, "colour"),
    ({"advancedBucketConnection": {"endpoint": "ftp://x"}}, "endpoint"),
    ({"advancedBucketConnection": {"multipartPartSize": 1024}}, "multipartPartSize"),
    ({"advancedBucketConnection": {"signerType": "magic"}}, "signerType"),
    ({"advancedBucketConnection": {"forcePathStyle": "yes"}}, "forcePathStyle"),
    ({"bucketSecurity": {"accessKeyId": "AK"}}, "secretAccessKey"),
    ({"preSignedUrlEnabled": "true"}, "preSignedUrlEnabled"),
    ({"extra": 1}, "extra"),
])
def test_wrong_settings_name_the_key(change, named):
    data = {"bucket": {"name": "abc"}, **change}
    with pytest.raises(ConfigurationError) as raised:
        parse_s3_settings({"bucketConfiguration": data})
    assert named in raised.value.message


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner,
                                                                                        max_size=4), max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["bucket", "bucketSecurity", "advancedBucketConnection",
                                        "preSignedUrlEnabled", "other"]), json_values, max_size=5))
def test_any_body_is_parsed_or_refused_with_a_configuration_error(body):
    try:
        parse_s3_settings({"bucketConfiguration": body})
    except ConfigurationError:
        pass


def test_secrets_are_hidden_and_kept_on_update():
    shown = public_bucket_configuration({"bucketConfiguration": FULL})
    assert shown["bucketSecurity"] == {"accessKeyId": "AK", "role": ""}
    assert "SK" not in str(shown) and "ST" not in str(shown)
    kept = keep_secrets(shown, FULL)
    assert kept["bucketSecurity"]["secretAccessKey"] == "SK" and kept["bucketSecurity"]["sessionToken"] == "ST"
    other_key = keep_secrets({**shown, "bucketSecurity": {"accessKeyId": "NEW"}}, FULL)
    assert "secretAccessKey" not in other_key["bucketSecurity"]  # a new key never inherits the old secret


def test_toml_blob_store_entries_nest_like_the_rest_body(tmp_path):
    config = tmp_path / "stowage.toml"
    config.write_text('''
[[blobStores]]
name = "s3"
type = "S3"
softQuota = { type = "spaceUsedQuota", limit = 100 }
[blobStores.bucketConfiguration.bucket]
name = "artifacts"
region = "us-east-1"
''')
    loaded = load_config_file(config, make_converter())
    store = loaded.blob_stores[0]
    assert store.type == "S3"
    assert store.attributes["bucketConfiguration"]["bucket"]["name"] == "artifacts"
    assert store.attributes["softQuota"] == {"type": "spaceUsedQuota", "limit": 100}
    config.write_text('[[blobStores]]\nname = "f"\npaht = "typo"\n')
    with pytest.raises(ConfigurationError) as raised:
        load_config_file(config, make_converter())
    assert "paht" in raised.value.message


def test_a_wrong_toml_s3_store_stops_start_up_naming_the_key(stowage_factory):
    from stowage.blobstore import BlobStoreConfig

    wrong = BlobStoreConfig(name="s3", type="S3", attributes={"bucketConfiguration": {
        "bucket": {"name": "abc"}, "advancedBucketConnection": {"endpont": "http://x"}}})
    with pytest.raises(ConfigurationError) as raised:
        stowage_factory(blob_stores=[wrong])
    assert "endpont" in raised.value.message and "blob store s3" in raised.value.message

"""The lean signer must produce exactly the headers botocore's S3SigV4Auth produces for the same GET."""

import datetime

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from objsync.s3 import sigv4
from objsync.s3.sigv4 import Credentials, encode_path, encode_query, sign_get

KEYS = ["plain.py", "with space.py", "plus+sign.py", "percent%41.py", "ünïcødé/ñ.py", "q?x#y.py",
        "tilde~and=eq&amp.py", "semi;colon,comma.py", "dir/'quote'.py", "star*bang!.py", "a//b/./../c.py"]
WHEN = datetime.datetime(2026, 11, 25, 3, 15, 7)


def botocore_headers(monkeypatch, creds: Credentials, region: str, url: str, headers: dict) -> dict:
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: WHEN)
    request = AWSRequest(method="GET", url=url, headers=dict(headers))
    request.context = {}
    S3SigV4Auth(BotoCredentials(creds.access_key, creds.secret_key, creds.token), "s3", region).add_auth(request)
    return {k.lower(): v for k, v in request.headers.items()}


def ours(creds, region, host, path, query, headers) -> dict:
    lines = sign_get(creds, region, host, path, query, headers, timestamp="20261125T031507Z")
    return {name.lower(): value for name, _, value in (line.partition(": ") for line in lines)}


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("token", [None, "session-token/with+odd=chars"])
def test_object_get_matches_botocore(monkeypatch, key, token):
    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    path = encode_path(f"/bucket/{key}")
    headers = {"If-Match": '"0123456789abcdef0123456789abcdef"'}
    expected = botocore_headers(monkeypatch, creds, "eu-west-1", f"http://127.0.0.1:8333{path}", headers)
    got = ours(creds, "eu-west-1", "127.0.0.1:8333", path, "", headers)
    assert got["authorization"] == expected["authorization"]
    assert {k: v for k, v in got.items() if k != "if-match"} == \
        {k: v for k, v in expected.items() if k != "if-match"}


@pytest.mark.parametrize("prefix", ["", "dags/", "team a/ü+x=y&z/", "p%2F~"])
def test_list_query_matches_botocore(monkeypatch, prefix):
    creds = Credentials("AKID", "secret")
    query = encode_query({"list-type": "2", "prefix": prefix, "encoding-type": "url", "max-keys": "1000",
                          "continuation-token": "1/abc+def=="})
    expected = botocore_headers(monkeypatch, creds, "us-east-1", f"https://bucket.s3.amazonaws.com/?{query}", {})
    got = ours(creds, "us-east-1", "bucket.s3.amazonaws.com", "/", query, {})
    assert got == expected


def test_version_query_matches_botocore(monkeypatch):
    creds = Credentials("AKID", "secret")
    path, query = encode_path("/b/k.py"), encode_query({"versionId": "3/L4kqtJl+cn=="})
    expected = botocore_headers(monkeypatch, creds, "us-east-1", f"https://s3.amazonaws.com{path}?{query}", {})
    assert ours(creds, "us-east-1", "s3.amazonaws.com", path, query, {}) == expected


def test_signing_key_is_derived_once_per_day_and_region():
    sigv4.signing_key.cache_clear()
    creds = Credentials("AKID", "secret")
    for second in range(5):
        sign_get(creds, "us-east-1", "h", "/b/k", timestamp=f"20261125T0315{second:02d}Z")
    sign_get(creds, "us-east-1", "h", "/b/k", timestamp="20261126T000000Z")
    info = sigv4.signing_key.cache_info()
    assert (info.misses, info.hits) == (2, 4)


def test_repr_hides_the_secret_and_token():
    text = repr(Credentials("AKID", "very-secret", "tok"))
    assert "very-secret" not in text and "tok'" not in text and "AKID" in text

"""The pure pieces of objsync.s3: records, error kinds, and when and how the fast path is taken."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from objsync.s3.boto import content_md5
from objsync.s3.config import RemoteConfig, make_session
from objsync.s3.errors import is_missing
from objsync.s3.fast import find_route, host_header, no_proxy_for
from objsync.s3.records import Buffer, Cancelled, ReadInfo, ReadResult


def client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": ""}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       "GetObject")


@pytest.fixture
def keys(monkeypatch, tmp_path):
    """Static credentials and no proxy, no profile and no config file: nothing is looked up elsewhere."""
    for name in ("AWS_PROFILE", "AWS_CA_BUNDLE", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy",
                 "NO_PROXY", "no_proxy", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")


def test_buffer_keeps_chunks_until_discarded():
    b = Buffer()
    b.write(b"ab")
    b.write(b"c")
    assert b.getvalue() == b"abc"
    b.discard()
    assert b.getvalue() == b""


def test_a_read_result_is_ok_only_with_info_and_no_error():
    info = ReadInfo(3, "e", None)
    assert ReadResult(info, Buffer()).ok
    assert not ReadResult(error=Cancelled("stopped")).ok
    assert not ReadResult().ok


def test_content_md5_is_the_base64_digest():
    assert content_md5(b"") == "1B2M2Y8AsgTpgAmY7PhCfg=="


@pytest.mark.parametrize("code,status,missing", [
    ("NoSuchKey", 404, True), ("NoSuchVersion", 404, True), ("404", 404, True), ("", 404, True),
    ("NoSuchBucket", 404, False), ("AccessDenied", 403, False), ("PreconditionFailed", 412, False)])
def test_missing_means_the_object_not_the_bucket(code, status, missing):
    assert is_missing(client_error(code, status)) is missing


def test_other_errors_are_never_missing():
    assert not is_missing(FileNotFoundError("NoSuchKey"))


@pytest.mark.parametrize("url,host", [
    ("http://127.0.0.1:80/b", "127.0.0.1"), ("https://s3.example.com:443", "s3.example.com"),
    ("http://Minio:9000", "minio:9000"), ("http://[::1]:8333", "[::1]:8333")])
def test_host_header_is_what_botocore_signs(url, host):
    assert host_header(urlsplit(url)) == host


def test_a_proxy_keeps_botocore_unless_the_host_is_exempt(monkeypatch, keys):
    assert no_proxy_for("http://127.0.0.1:8333")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy:3128")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    assert not no_proxy_for("http://s3.internal:8333")
    monkeypatch.setenv("NO_PROXY", "s3.internal")
    assert no_proxy_for("http://s3.internal:8333")
    cfg = RemoteConfig(endpoint_url="http://objects.example:8333")
    assert find_route(cfg, "b", make_session(cfg), client=None) is None


def test_a_custom_endpoint_is_reached_path_style_without_a_client(keys):
    cfg = RemoteConfig(endpoint_url="http://127.0.0.1:8333", region="eu-west-1", concurrency=3)
    route = find_route(cfg, "my-bucket", make_session(cfg), client=None)
    assert (route.origin, route.host, route.bucket_path, route.region) == (
        "http://127.0.0.1:8333", "127.0.0.1:8333", "/my-bucket", "eu-west-1")
    assert route.concurrency == 3 and route.transfer.ca_file is None  # plain HTTP needs no CA bundle
    assert "secret" not in repr(route)


def test_tls_trusts_the_bundle_the_client_would_trust(monkeypatch, keys, tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    monkeypatch.setenv("AWS_CA_BUNDLE", str(bundle))
    cfg = RemoteConfig(endpoint_url="https://s3.internal")
    assert find_route(cfg, "b", make_session(cfg), client=None).transfer.ca_file == str(bundle)
    own = RemoteConfig(endpoint_url="https://s3.internal", verify="/etc/own.pem")
    assert find_route(own, "b", make_session(own), client=None).transfer.ca_file == "/etc/own.pem"
    off = RemoteConfig(endpoint_url="https://s3.internal", verify=False)
    assert find_route(off, "b", make_session(off), client=None).transfer.verify is False


def test_no_fast_path_when_turned_off_or_without_credentials(monkeypatch, keys):
    off = RemoteConfig(endpoint_url="http://127.0.0.1:8333", fast_get=False)
    assert find_route(off, "b", make_session(off), client=None) is None
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    cfg = RemoteConfig(endpoint_url="http://127.0.0.1:8333")
    assert find_route(cfg, "b", make_session(cfg), client=None) is None


def test_a_page_is_read_for_its_token_without_parsing_and_digested_without_it():
    from objsync.s3.pages import continuation, page_digest

    page = (b"<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>a</Key></Contents>"
            b"<NextContinuationToken>x&amp;y&lt;</NextContinuationToken></ListBucketResult>")
    assert continuation(page) == (True, "x&y<")
    assert continuation(page.replace(b"true", b"false")) == (False, "x&y<")
    assert page_digest(page) == page_digest(page.replace(b"x&amp;y&lt;", b"other"))
    assert page_digest(page) != page_digest(page.replace(b"<Key>a<", b"<Key>b<"))

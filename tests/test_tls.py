"""The fast path over HTTPS: it trusts what the client would trust, and nothing else."""

from __future__ import annotations

import ssl

import pytest
import trustme
from proxy import TlsProxy
from support import objsync, put, tree

from objsync.s3.bucket import Bucket
from objsync.s3.config import RemoteConfig
from objsync.s3.records import Buffer, ReadRequest


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture
def tls(seaweed, ca):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    host, port = seaweed.endpoint_url.rsplit("//", 1)[1].split(":")
    proxy = TlsProxy(host, int(port), context)
    yield proxy
    proxy.close()


@pytest.fixture
def objects(s3_client, bucket):
    data = {f"t/f{i}.py": f"object {i}\n".encode() * (i + 1) for i in range(20)}
    put(s3_client, bucket, data)
    return data


def read_all(reader: Bucket, s3_client, bucket: str, objects: dict[str, bytes]):
    """Every object through read_many: the results, and the bytes each sink was handed (kept or discarded)."""
    sinks: dict[str, list[Buffer]] = {k: [] for k in objects}

    def opener(key):
        def open_sink():
            sinks[key].append(Buffer())
            return sinks[key][-1]
        return open_sink

    etags = {k: s3_client.head_object(Bucket=bucket, Key=k)["ETag"].strip('"') for k in objects}
    results = reader.read_many([ReadRequest(k, etags[k], opener(k)) for k in objects])
    return results, {k: b"".join(b.getvalue() for b in v) for k, v in sinks.items()}


def test_fast_path_trusts_the_configured_ca_bundle(tls, ca, s3_client, bucket, objects, aws_env, tmp_path,
                                                   monkeypatch):
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("AWS_CA_BUNDLE", str(bundle))
    reader = Bucket(RemoteConfig(endpoint_url=tls.url), bucket)
    results, got = read_all(reader, s3_client, bucket, objects)
    assert all(r.ok for r in results) and reader.fallbacks == 0
    assert got == objects
    run = objsync("pull", "--once", "--json", "--endpoint-url", tls.url, f"s3://{bucket}/t", str(tmp_path / "d"),
                  env=aws_env | {"AWS_CA_BUNDLE": str(bundle)})
    assert run.rc == 0, run.err
    assert tree(tmp_path / "d") == {k[2:]: v for k, v in objects.items()}


def test_an_untrusted_certificate_is_refused_on_both_paths(tls, s3_client, bucket, objects, aws_env, tmp_path,
                                                           monkeypatch):
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))  # a bundle that does not hold the server's CA
    monkeypatch.setenv("AWS_CA_BUNDLE", str(other))
    reader = Bucket(RemoteConfig(endpoint_url=tls.url, max_attempts=1), bucket)
    results, got = read_all(reader, s3_client, bucket, objects)
    assert reader.fallbacks == len(objects)  # both transports were tried, and both refused
    assert all(not r.ok and "SSL" in type(r.error).__name__ for r in results), results
    assert all(body == b"" for body in got.values())  # not one byte from an unverified server
    run = objsync("pull", "--once", "--json", "--endpoint-url", tls.url, "--read-timeout", "2s",
                  f"s3://{bucket}/t", str(tmp_path / "d"), env=aws_env | {"AWS_CA_BUNDLE": str(other)})
    assert run.rc == 1 and "SSL" in run.err and "AWS_CA_BUNDLE" in run.err, run.err  # names the cause and the fix
    assert [p for p in (tmp_path / "d").rglob("*.py")] == []


def test_verify_off_reaches_a_self_signed_server_on_the_fast_path(tls, s3_client, bucket, objects, aws_env):
    reader = Bucket(RemoteConfig(endpoint_url=tls.url, verify=False), bucket)
    results, got = read_all(reader, s3_client, bucket, objects)
    assert all(r.ok for r in results) and reader.fallbacks == 0
    assert got == objects

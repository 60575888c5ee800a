"""The SeaweedFS test server behaves like the S3 the sync tool needs."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from objsync.bench.seaweed import SeaweedFS

MiB = 1024 * 1024


def test_server_is_up(seaweed: SeaweedFS) -> None:
    assert seaweed.running()
    assert seaweed.endpoint_url.startswith("http://127.0.0.1:")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with pytest.raises(urllib.error.HTTPError) as err:
        opener.open(seaweed.endpoint_url + "/", timeout=5)
    assert err.value.code == 403


def test_put_list_get_roundtrip(s3_client: Any, bucket: str) -> None:
    body = bytes(range(256)) * 1000 + b"\r\n\x00tail"
    s3_client.put_object(Bucket=bucket, Key="dags/example.py", Body=body)

    listed = s3_client.list_objects_v2(Bucket=bucket)["Contents"]
    assert [(o["Key"], o["Size"]) for o in listed] == [("dags/example.py", len(body))]

    got = s3_client.get_object(Bucket=bucket, Key="dags/example.py")
    assert got["Body"].read() == body
    assert got["ETag"] == listed[0]["ETag"]


def test_multipart_upload_etag(s3_client: Any, bucket: str, tmp_path: Path) -> None:
    from boto3.s3.transfer import TransferConfig

    src = tmp_path / "big.bin"
    data = os.urandom(10 * MiB)
    src.write_bytes(data)
    config = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)

    s3_client.upload_file(str(src), bucket, "big.bin", Config=config)

    head = s3_client.head_object(Bucket=bucket, Key="big.bin")
    assert head["ETag"].strip('"').endswith("-2")
    assert head["ContentLength"] == len(data)
    assert s3_client.get_object(Bucket=bucket, Key="big.bin")["Body"].read() == data


def test_prefix_listing_is_not_a_string_prefix_of_siblings(s3_client: Any, bucket: str) -> None:
    for key in ("p/x", "p/sub/y", "p_old/x", "p"):
        s3_client.put_object(Bucket=bucket, Key=key, Body=key.encode())

    listed = s3_client.list_objects_v2(Bucket=bucket, Prefix="p/").get("Contents", [])

    assert sorted(o["Key"] for o in listed) == ["p/sub/y", "p/x"]


def test_env_points_default_clients_at_server(aws_env: dict[str, str], bucket: str) -> None:
    import boto3

    assert os.environ["AWS_ENDPOINT_URL"] == aws_env["AWS_ENDPOINT_URL"]
    client = boto3.session.Session().client("s3")
    names = [b["Name"] for b in client.list_buckets()["Buckets"]]
    assert bucket in names


def test_listens_on_loopback_only(seaweed: SeaweedFS) -> None:
    psutil = pytest.importorskip("psutil", reason="psutil is needed to inspect listening sockets")
    proc = psutil.Process(seaweed.pid)
    listening: list[tuple[str, int]] = []
    for p in [proc, *proc.children(recursive=True)]:
        # net_connections() appeared in psutil 6; connections() is the older name.
        get_conns = getattr(p, "net_connections", None) or p.connections
        conns = get_conns(kind="inet")
        listening += [(c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN]

    assert listening, "weed has no listening sockets"
    assert {ip for ip, _ in listening} == {"127.0.0.1"}
    assert sorted(port for _, port in listening) == sorted(seaweed.ports())

"""Faults on the wire (a fault-injecting proxy in front of SeaweedFS): never a corrupt file, never cached."""

from __future__ import annotations

import io
import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from boto3.s3.transfer import TransferConfig
from faultproxy import FaultProxy
from support import objsync, tree
from test_daemon import Daemon, wait_for

from objsync.pull.state import State


@pytest.fixture
def seeded(s3_client, bucket):
    objects = {f"f/r{i % 4}/o{i}.py": os.urandom(500 + (i * 7919) % 40_000) for i in range(120)}
    with ThreadPoolExecutor(16) as ex:
        list(ex.map(lambda kv: s3_client.put_object(Bucket=bucket, Key=kv[0], Body=kv[1]), objects.items()))
    big = os.urandom(11 << 20)
    cfg = TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20)
    s3_client.upload_fileobj(io.BytesIO(big), bucket, "f/big.bin", Config=cfg)
    objects["f/big.bin"] = big
    return {k[2:]: v for k, v in objects.items()}


@pytest.fixture
def proxy(seaweed):
    host, port = seaweed.endpoint_url.rsplit("//", 1)[1].split(":")
    p = FaultProxy((host, int(port)), rate=0.2, stall_seconds=2.5)
    yield p
    p.close()


def assert_never_corrupt(dest, expected, endpoint, bucket):
    """Every file present holds exactly its object's bytes, and the cache claims only such files."""
    on_disk = tree(dest)
    for rel, data in on_disk.items():
        assert data == expected[rel], f"{rel} is corrupt"
    assert list((dest / ".objsync/tmp").iterdir()) == []
    with State.open(dest / ".objsync/cache", f"{endpoint}|{bucket}|f/") as state:
        for rel, entry in state.entries.items():
            st = (dest / rel).stat()
            assert (st.st_size, st.st_mtime_ns) == (entry.size, entry.mtime_ns)
            assert on_disk[rel] == expected[rel]


def test_once_under_20_percent_faults_converges_or_names_keys(seeded, proxy, bucket, tmp_path, aws_env):
    d = tmp_path / "d"
    args = ["pull", "--once", "--json", "--endpoint-url", proxy.url, "--read-timeout", "1s",
            "--connect-timeout", "1s", "--workers", "2", "--threads", "4", f"s3://{bucket}/f", str(d)]
    outcomes = []
    for _ in range(6):
        run = objsync(*args, env=aws_env)
        assert run.rc in (0, 1), run.err
        if run.rc == 1:
            summary = run.summary
            assert summary["errors"] and all(e["key"] and e["error"] for e in summary["errors"])
            for e in summary["errors"]:
                assert e["key"] in run.err  # each failure is also named in the log
        outcomes.append(run.rc)
        assert_never_corrupt(d, seeded, proxy.url, bucket)
        if run.rc == 0:
            break
    assert sum(proxy.injected.values()) > 10, proxy.injected
    proxy.rate = 0
    run = objsync(*args, env=aws_env)
    assert run.rc == 0, run.err
    assert tree(d) == seeded


@pytest.mark.parametrize("kind", ["reset", "truncate", "etag", "corrupt", "500"])
def test_each_fault_on_every_download_is_named_and_nothing_is_written(seeded, proxy, bucket, tmp_path, aws_env, kind):
    small = {rel: data for rel, data in seeded.items() if rel != "big.bin"}
    proxy.kinds, proxy.rate = (kind,), 1.0
    d = tmp_path / "d"
    d.mkdir()
    (d / "r0").mkdir()
    (d / "r0/o0.py").write_bytes(b"an old version that must survive")
    args = ["pull", "--once", "--json", "--endpoint-url", proxy.url, "--include", "r*/**", f"s3://{bucket}/f", str(d)]
    run = objsync(*args, env=aws_env)
    assert run.rc == 1
    failed = {e["key"] for e in run.summary["errors"]}
    if kind == "500":  # the listing itself fails after botocore's retries
        assert run.summary["errors"][0]["error"].startswith("listing failed")
    else:
        assert failed == {"f/" + rel for rel in small}
    assert tree(d) == {"r0/o0.py": b"an old version that must survive"}
    assert proxy.injected[kind] > 0
    proxy.rate = 0
    assert objsync(*args, env=aws_env).rc == 0
    assert tree(d) == small


def test_stall_longer_than_the_read_timeout_fails_cleanly(seeded, proxy, bucket, tmp_path, aws_env):
    proxy.kinds, proxy.rate = ("stall",), 1.0
    d = tmp_path / "d"
    run = objsync("pull", "--once", "--json", "--endpoint-url", proxy.url, "--read-timeout", "500ms",
                  f"s3://{bucket}/f", str(d), env=aws_env, timeout=120)
    assert run.rc == 1 and "listing failed" in run.summary["errors"][0]["error"]
    assert tree(d) == {}


def test_daemon_survives_faults_and_converges_after(seeded, proxy, bucket, tmp_path, aws_env):
    proxy.rate = 0.3
    d = tmp_path / "d"
    with Daemon(f"s3://{bucket}/f", d, aws_env, "--endpoint-url", proxy.url, "--read-timeout", "1s",
                "--threads", "4") as daemon:
        wait_for(lambda: daemon.passes() >= 3, timeout=60, what="three passes under faults")
        assert daemon.proc.poll() is None
        assert_never_corrupt(d, seeded, proxy.url, bucket)
        proxy.rate = 0
        wait_for(lambda: tree(d) == seeded, timeout=60, what="convergence")
        assert daemon.stop() == 0


def test_in_process_pull_stops_promptly_while_downloads_stall(s3_client, seeded, seaweed, bucket, tmp_path, aws_env):
    host, port = seaweed.endpoint_url.rsplit("//", 1)[1].split(":")
    stalling = FaultProxy((host, int(port)), rate=1.0, kinds=("stall",), stall_seconds=60, objects_only=True)
    d = tmp_path / "d"
    try:
        with Daemon(f"s3://{bucket}/f", d, aws_env, "--endpoint-url", stalling.url, "--read-timeout", "60s",
                    "--workers", "0") as daemon:
            wait_for(lambda: stalling.injected["stall"] >= 4, timeout=30, what="downloads to stall")
            started = time.monotonic()
            assert daemon.stop() == 0
            # The grace period is 5 s; without cancelling, the stalled transfers would hold on for 60 s.
            assert time.monotonic() - started < 12
    finally:
        stalling.close()
    assert list((d / ".objsync/tmp").iterdir()) == []
    assert [p for p in d.rglob("*.py")] == []


def test_a_single_read_never_passes_on_the_bytes_of_a_failed_attempt(s3_client, seaweed, bucket, aws_env):
    from objsync.s3.bucket import Bucket
    from objsync.s3.config import RemoteConfig

    data = os.urandom(300_000)
    s3_client.put_object(Bucket=bucket, Key="m/x.json", Body=data)
    etag = s3_client.head_object(Bucket=bucket, Key="m/x.json")["ETag"].strip('"')
    host, port = seaweed.endpoint_url.rsplit("//", 1)[1].split(":")
    cutting = FaultProxy((host, int(port)), rate=1.0, kinds=("truncate",), objects_only=True, budget=1)
    try:
        reader = Bucket(RemoteConfig(endpoint_url=cutting.url), bucket)
        chunks: list[bytes] = []
        info = reader.read("m/x.json", etag, len(data), chunks.append)
    finally:
        cutting.close()
    assert cutting.injected["truncate"] == 1 and reader.fallbacks == 1  # half the bytes came, then the cut
    assert b"".join(chunks) == data and info.etag == etag

"""The worker side against a real SeaweedFS: a failed or short download never replaces a good file."""

from __future__ import annotations

import pytest
from support import put, tree

from objsync.model import Fetch, Job
from objsync.pull import localfs
from objsync.pull.config import PullConfig
from objsync.pull.fetch import WriteOptions
from objsync.pull.session import Session
from objsync.pull.decide import Rules
from objsync.pull.pool import Pool, PoolConfig
from objsync.pull.state import State
from objsync.s3.bucket import Bucket
from objsync.s3.config import Location, RemoteConfig


@pytest.fixture
def dest(tmp_path):
    d = tmp_path / "d"
    localfs.prepare_root(d)
    (d / "a.py").write_bytes(b"good old bytes")
    return d


def run_tasks(seaweed, bucket, dest, tasks, workers=0):
    remote = RemoteConfig(endpoint_url=seaweed.endpoint_url)
    opts = WriteOptions(str(localfs.tmp_dir(dest)), bucket)
    with Pool(remote, opts, PoolConfig(workers=workers, threads=2)) as pool:
        return [r for batch in pool.run([Job(t, str(dest), t.rel) for t in tasks]) for r in batch]


def test_object_changed_since_listing_is_refused(seaweed, s3_client, bucket, dest, aws_env):
    put(s3_client, bucket, {"a.py": b"new bytes"})
    stale = Fetch("a.py", "a.py", "0" * 32, 9, 0, "changed in bucket")
    (r,) = run_tasks(seaweed, bucket, dest, [stale])
    assert not r.ok and "412" in r.error
    assert (dest / "a.py").read_bytes() == b"good old bytes"
    assert list(localfs.tmp_dir(dest).iterdir()) == []


def test_short_body_is_refused(seaweed, s3_client, bucket, dest, aws_env):
    put(s3_client, bucket, {"a.py": b"new bytes"})
    etag = s3_client.head_object(Bucket=bucket, Key="a.py")["ETag"].strip('"')
    wrong_size = Fetch("a.py", "a.py", etag, 50, 0, "changed in bucket")
    (r,) = run_tasks(seaweed, bucket, dest, [wrong_size])
    assert not r.ok and "received 9 bytes, the listing says 50" in r.error
    assert (dest / "a.py").read_bytes() == b"good old bytes"
    assert list(localfs.tmp_dir(dest).iterdir()) == []


def test_object_deleted_since_listing_is_an_error(seaweed, bucket, dest, aws_env):
    gone = Fetch("gone.py", "gone.py", "", 3, 0, "new")
    (r,) = run_tasks(seaweed, bucket, dest, [gone], workers=2)
    assert not r.ok and "NoSuchKey" in r.error
    assert not (dest / "gone.py").exists()


def test_a_failed_fetch_holds_back_every_delete_and_never_enters_the_cache(
        seaweed, s3_client, bucket, dest, aws_env, monkeypatch):
    put(s3_client, bucket, {"p/a.py": b"v1", "p/b.py": b"b"})
    cfg = PullConfig(source=Location(bucket, "p"), dest=dest, remote=RemoteConfig(endpoint_url=seaweed.endpoint_url),
                     rules=Rules(), pool=PoolConfig(workers=0, threads=2))
    remote = Bucket(cfg.remote, bucket)
    opts = WriteOptions(str(localfs.tmp_dir(dest)), bucket)
    (dest / "stray.py").write_bytes(b"stray")
    real_page = remote.page

    def list_then_overwrite(prefix, token):
        page = real_page(prefix, token)
        put(s3_client, bucket, {"p/a.py": b"v2 written after the listing"})  # the race, made certain
        return page

    monkeypatch.setattr(remote, "page", list_then_overwrite)
    with State.open(localfs.state_dir(dest) / "cache", cfg.identity) as state, Pool(cfg.remote, opts, cfg.pool) as pool:
        session = Session(cfg, remote, state, pool)
        report = session.run_pass()
        assert [p.key for p in report.errors] == ["p/a.py"]
        assert report.transfer_failed and report.deleted == 0
        assert (dest / "stray.py").exists()
        assert "a.py" not in state.entries and "b.py" in state.entries
        monkeypatch.setattr(remote, "page", real_page)
        report = session.run_pass()
        assert report.ok and report.deleted == 1
    assert tree(dest) == {"a.py": b"v2 written after the listing", "b.py": b"b"}


def test_worker_refuses_to_write_through_a_symlinked_folder(seaweed, s3_client, bucket, dest, tmp_path, aws_env):
    outside = tmp_path / "outside"
    outside.mkdir()
    (dest / "team").symlink_to(outside)
    put(s3_client, bucket, {"team/evil.py": b"evil"})
    etag = s3_client.head_object(Bucket=bucket, Key="team/evil.py")["ETag"].strip('"')
    (r,) = run_tasks(seaweed, bucket, dest, [Fetch("team/evil.py", "team/evil.py", etag, 4, 0, "new")])
    assert not r.ok and "symlink" in r.error
    assert list(outside.iterdir()) == []


SPECIAL_KEYS = ["plain.py", "with space.py", "plus+sign.py", "percent%41.py", "ünïcødé/ñ.py", "q?x#y.py",
                "tilde~and=eq&amp.py", "semi;colon,comma.py", "dir/'quote'.py", "star*bang!.py"]


def test_fast_path_signs_every_kind_of_key_and_matches_the_client(seaweed, s3_client, bucket, aws_env):
    bodies = {k: f"body of {k}".encode() * 7 for k in SPECIAL_KEYS}
    put(s3_client, bucket, bodies)
    fast = Bucket(RemoteConfig(endpoint_url=seaweed.endpoint_url), bucket)
    slow = Bucket(RemoteConfig(endpoint_url=seaweed.endpoint_url, fast_get=False), bucket)
    for key, body in bodies.items():
        etag = s3_client.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
        for reader in (fast, slow):
            chunks: list[bytes] = []
            info = reader.read(key, etag, len(body), chunks.append)
            assert b"".join(chunks) == body and (info.etag, info.size) == (etag, len(body)), key
    assert fast.fallbacks == 0  # the fast path answered every key itself


def test_fast_path_hands_errors_to_the_client(seaweed, s3_client, bucket, aws_env):
    from botocore.exceptions import ClientError

    put(s3_client, bucket, {"a.py": b"a"})
    reader = Bucket(RemoteConfig(endpoint_url=seaweed.endpoint_url), bucket)
    with pytest.raises(ClientError, match="PreconditionFailed|412"):
        reader.read("a.py", "0" * 32, 1, lambda chunk: None)
    assert reader.fallbacks == 1


def test_fast_listing_matches_the_paginator_across_pages(seaweed, s3_client, bucket, aws_env):
    from concurrent.futures import ThreadPoolExecutor

    keys = [f"p/{i:05d}.py" for i in range(1050)] + [f"p/{k}" for k in SPECIAL_KEYS] + ["p/ctl\x01.py", "q/x"]
    with ThreadPoolExecutor(16) as ex:
        list(ex.map(lambda k: s3_client.put_object(Bucket=bucket, Key=k, Body=k.encode()), keys))
    remote = Bucket(RemoteConfig(endpoint_url=seaweed.endpoint_url), bucket)
    paginator = Bucket(RemoteConfig(endpoint_url=seaweed.endpoint_url, fast_get=False), bucket)
    fast = remote.list("p/")
    assert fast == paginator.list("p/")
    assert sorted(o.key for o in fast) == sorted(k for k in keys if k.startswith("p/"))
    assert remote.list_level("") == paginator.list_level("") == ([], ["p/", "q/"])
    assert remote.list_level("p/") == paginator.list_level("p/")
    assert remote.fallbacks == 0


def test_a_sibling_reader_shares_the_session_but_not_the_connections(seaweed, s3_client, bucket, aws_env,
                                                                     monkeypatch):
    from proxy import TcpProxy

    from objsync.s3 import bucket as bucket_module
    from objsync.s3.records import Buffer, ReadRequest

    objects = {"s/a.py": b"a" * 100, "s/b.py": b"b" * 200}
    put(s3_client, bucket, objects)
    etags = {k: s3_client.head_object(Bucket=bucket, Key=k)["ETag"].strip('"') for k in objects}
    sessions = []
    monkeypatch.setattr(bucket_module, "make_session",
                        lambda cfg, make=bucket_module.make_session: sessions.append(make(cfg)) or sessions[-1])
    host, port = seaweed.endpoint_url.rsplit("//", 1)[1].split(":")
    counting = TcpProxy(host, int(port))  # counts the connections opened through it

    def read_all(reader):
        results = reader.read_many([ReadRequest(k, etags[k], Buffer) for k in objects])
        assert [r.sink.getvalue() for r in results] == list(objects.values())

    try:
        first = Bucket(RemoteConfig(endpoint_url=counting.url, concurrency=2), bucket)
        read_all(first)  # first's connections are open and idle now
        opened = counting.accepted
        twin = first.sibling()
        read_all(twin)
        assert counting.accepted > opened  # the twin did not borrow first's connections
        first.close()
        read_all(twin)
        twin.close()
    finally:
        counting.close()
    assert len(sessions) == 1  # one session: credentials are found once
    assert first.fallbacks == twin.fallbacks == 0

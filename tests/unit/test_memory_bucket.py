"""The MemoryBucket answers as S3 does where a pull can tell, or the tests built on it prove nothing."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import pytest
from botocore.exceptions import ClientError
from support.memory_bucket import MemoryBucket

from objsync.s3.errors import describe_error, is_missing
from objsync.s3.records import Buffer, Cancelled, ReadRequest


def read(bucket: MemoryBucket, key: str, etag: str = "", version_id: str | None = None) -> bytes:
    body = Buffer()
    bucket.read(key, etag, 0, body.write, version_id)
    return body.getvalue()


def test_listings_carry_md5_etags_and_last_modified_in_key_order():
    bucket = MemoryBucket()
    before = datetime.now(timezone.utc).timestamp() * 1e9 - 1e6
    bucket.put_many({"p/b.py": b"b", "p/a/x.py": b"x", "q/c.py": b"c"})
    listing = bucket.list("p/")
    assert [(o.key, o.etag, o.size) for o in listing] == [
        ("p/a/x.py", hashlib.md5(b"x").hexdigest(), 1), ("p/b.py", hashlib.md5(b"b").hexdigest(), 1)]
    assert all(before <= o.mtime_ns <= before + 60e9 and o.mtime_ns % 1_000_000 == 0 for o in listing)
    objects, folders = bucket.list_level("p/")
    assert [o.key for o in objects] == ["p/b.py"] and folders == ["p/a/"]


def test_reads_honour_if_match_and_version_ids_and_fail_as_s3_does():
    bucket = MemoryBucket()
    first = bucket.put("k", b"one")
    bucket.put("k", b"two")
    assert read(bucket, "k") == b"two"
    assert read(bucket, "k", version_id=first.version_id) == b"one"
    with pytest.raises(ClientError) as changed:
        read(bucket, "k", etag=first.etag)
    assert describe_error(changed.value).startswith("PreconditionFailed (HTTP 412)")
    bucket.delete(["k"])
    with pytest.raises(ClientError) as gone:
        read(bucket, "k")
    assert is_missing(gone.value) and describe_error(gone.value).startswith("NoSuchKey (HTTP 404)")
    assert read(bucket, "k", version_id=first.version_id) == b"one"  # a versioned bucket keeps it
    with pytest.raises(ClientError) as head:
        bucket.head("k")
    assert is_missing(head.value)


def test_read_many_gives_each_read_its_own_sink_and_ends_what_is_left_once_cancelled():
    bucket = MemoryBucket()
    bucket.put_many({"a": b"a", "b": b"b", "c": b"c"})
    bucket.broken.add("b")
    sinks: list[Buffer] = []

    def open_sink() -> Buffer:
        sinks.append(Buffer())
        return sinks[-1]

    stopped = []
    bucket.before_read = lambda key: stopped.append(key)
    results = bucket.read_many([ReadRequest(k, "", open_sink) for k in "abc"], cancelled=lambda: len(stopped) >= 2)
    assert results[0].ok and results[0].sink.getvalue() == b"a" and results[0].info.etag == hashlib.md5(b"a").hexdigest()
    assert describe_error(results[1].error).startswith("InternalError (HTTP 500)") and sinks[1].getvalue() == b""
    assert isinstance(results[2].error, Cancelled) and len(sinks) == 2

"""The Bucket against a real SeaweedFS: which reads are repeated, into which sink, and the write calls."""

from __future__ import annotations

import errno
import io
import os

import pytest
from faultproxy import FaultProxy
from support import md5, put

from objsync.s3 import fast
from objsync.s3.bucket import Bucket
from objsync.s3.config import RemoteConfig
from objsync.s3.errors import is_missing
from objsync.s3.records import Buffer, Cancelled, ReadInfo, ReadRequest, SpanRequest

OBJECTS = {f"r/o{i}.bin": os.urandom(20_000 + i) for i in range(3)}


class Attempts:
    """Opens a Buffer per attempt and keeps them all; `fail` makes every write raise it."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.sinks: list[Buffer] = []
        self.discarded = 0
        self.fail = fail

    def open(self) -> Buffer:
        attempts = self

        class Sink(Buffer):
            def write(self, chunk: bytes) -> None:
                if attempts.fail is not None:
                    raise attempts.fail
                super().write(chunk)

            def discard(self) -> None:
                attempts.discarded += 1
                super().discard()

        self.sinks.append(Sink())
        return self.sinks[-1]


@pytest.fixture
def objects(s3_client, bucket):
    put(s3_client, bucket, OBJECTS)
    return {k: s3_client.head_object(Bucket=bucket, Key=k)["ETag"].strip('"') for k in OBJECTS}


def proxied(seaweed, **faults) -> FaultProxy:
    host, port = seaweed.endpoint_url.rsplit("//", 1)[1].split(":")
    return FaultProxy((host, int(port)), objects_only=True, **faults)


def read_all(reader: Bucket, etags: dict[str, str], cancelled=None, fail: Exception | None = None):
    attempts = {k: Attempts(fail) for k in etags}
    results = reader.read_many([ReadRequest(k, etags[k], attempts[k].open) for k in etags], cancelled)
    return results, attempts


def test_a_failed_fast_read_is_repeated_through_boto3_into_a_fresh_sink(seaweed, bucket, objects, aws_env):
    cutting = proxied(seaweed, rate=1.0, kinds=("truncate",), budget=1)
    try:
        with Bucket(RemoteConfig(endpoint_url=cutting.url), bucket) as reader:
            results, attempts = read_all(reader, objects)
    finally:
        cutting.close()
    assert cutting.injected["truncate"] == 1 and reader.fallbacks == 1
    assert [r.sink.getvalue() for r in results] == list(OBJECTS.values())
    (cut,) = [a for a in attempts.values() if len(a.sinks) == 2]
    assert cut.discarded == 1 and cut.sinks[0].getvalue() == b""  # the half-read attempt was thrown away
    assert all(r.sink is a.sinks[-1] for r, a in zip(results, attempts.values()))


@pytest.mark.parametrize("fast", [True, False])
def test_a_sink_that_fails_ends_the_read_without_a_second_one(seaweed, bucket, objects, aws_env, fast):
    counting = proxied(seaweed, rate=0.0)
    full = OSError(errno.ENOSPC, "No space left on device")
    try:
        with Bucket(RemoteConfig(endpoint_url=counting.url, fast_get=fast), bucket) as reader:
            results, attempts = read_all(reader, objects, fail=full)
    finally:
        counting.close()
    assert counting.requests == len(OBJECTS)  # one GET each, none repeated
    assert all(r.error is full and r.sink is None for r in results)
    assert all(len(a.sinks) == 1 and a.discarded == 1 for a in attempts.values())
    assert reader.fallbacks == 0


def test_reads_after_a_stop_end_as_cancelled_and_are_not_repeated(seaweed, bucket, objects, aws_env):
    counting = proxied(seaweed, rate=0.0)
    try:
        with Bucket(RemoteConfig(endpoint_url=counting.url), bucket) as reader:
            results, attempts = read_all(reader, objects, cancelled=lambda: True)
    finally:
        counting.close()
    assert all(isinstance(r.error, Cancelled) for r in results)
    assert counting.requests == 0 and reader.fallbacks == 0
    assert all(a.discarded == len(a.sinks) for a in attempts.values())


def test_a_sink_that_cannot_be_opened_fails_only_its_own_read(seaweed, bucket, objects, aws_env):
    def refuse():
        raise PermissionError(errno.EACCES, "Permission denied")

    keys = list(objects)
    with Bucket(RemoteConfig(endpoint_url=seaweed.endpoint_url), bucket) as reader:
        results = reader.read_many([ReadRequest(keys[0], objects[keys[0]], refuse),
                                    ReadRequest(keys[1], objects[keys[1]], Buffer)])
    assert isinstance(results[0].error, PermissionError) and not results[0].ok
    assert results[1].ok and results[1].sink.getvalue() == OBJECTS[keys[1]]


def test_a_span_cut_on_the_fast_path_goes_on_from_the_first_byte_not_delivered(seaweed, bucket, objects, aws_env):
    cutting = proxied(seaweed, rate=1.0, kinds=("truncate",), budget=1)
    keys = list(objects)
    got: dict[str, list[bytes]] = {k: [] for k in keys}
    spans = [SpanRequest(k, objects[k], 1000, 15_000, got[k].append) for k in keys]
    try:
        with Bucket(RemoteConfig(endpoint_url=cutting.url), bucket) as reader:
            ended = reader.read_spans(spans)
    finally:
        cutting.close()
    assert cutting.injected["truncate"] == 1 and reader.fallbacks == 1
    assert all(isinstance(e, ReadInfo) for e in ended), ended
    # Each write saw each byte of its span once, in order, though one read broke off half-way.
    assert {k: b"".join(v) for k, v in got.items()} == {k: OBJECTS[k][1000:15_000] for k in keys}


@pytest.mark.parametrize("fast", [True, False])
def test_a_span_of_a_replaced_or_missing_object_delivers_no_byte(seaweed, bucket, objects, aws_env, fast):
    keys = list(objects)
    got: list[bytes] = []
    spans = [SpanRequest(keys[0], "0" * 32, 0, 100, got.append), SpanRequest("r/none", "", 0, 100, got.append),
             SpanRequest(keys[1], objects[keys[1]], 0, len(OBJECTS[keys[1]]), Buffer().write)]
    with Bucket(RemoteConfig(endpoint_url=seaweed.endpoint_url, fast_get=fast), bucket) as reader:
        ended = reader.read_spans(spans)
    assert "PreconditionFailed" in str(ended[0]) and is_missing(ended[1]), ended
    assert got == []  # the server's error bodies never reach a span's write
    assert isinstance(ended[2], ReadInfo) and ended[2].size == len(OBJECTS[keys[1]])


def test_a_missing_object_is_final_on_the_fast_path_and_not_asked_again(seaweed, bucket, objects, aws_env):
    counting = proxied(seaweed, rate=0.0)
    try:
        with Bucket(RemoteConfig(endpoint_url=counting.url), bucket) as reader:
            (result,) = reader.read_many([ReadRequest("r/none.json", "", Buffer)])
            with pytest.raises(Exception) as raised:
                reader.read("r/none.json", "", 0, Buffer().write)
    finally:
        counting.close()
    assert is_missing(result.error) and is_missing(raised.value), (result.error, raised.value)
    assert "NoSuchKey" in str(result.error) and counting.requests == 2 and reader.fallbacks == 0


def test_write_calls_report_what_the_server_stored(seaweed, s3_client, bucket, aws_env):
    from botocore.exceptions import ClientError

    big = os.urandom((9 << 20) + 5)
    with Bucket(RemoteConfig(endpoint_url=seaweed.endpoint_url), bucket) as b:
        stored = b.put("w/a.json", b"{}", content_type="application/json")
        assert stored.etag == md5(b"{}") and b.head("w/a.json").etag == stored.etag
        assert s3_client.head_object(Bucket=bucket, Key="w/a.json")["ContentType"] == "application/json"
        sent = b.upload("w/big.bin", io.BytesIO(big), len(big))
        assert (sent.size, sent.md5) == (len(big), md5(big)) and sent.etag == sent.stored.etag
        assert sent.etag.endswith("-2")  # two parts of the fixed size, so the ETag could be recomputed
        copied = b.copy("w/b.json", bucket, "w/a.json", etag=stored.etag)
        assert copied.etag == stored.etag
        with pytest.raises(ClientError) as refused:
            b.copy("w/c.json", bucket, "w/a.json", etag="0" * 32)
        assert not is_missing(refused.value)
        with b.open("w/big.bin") as body:
            assert body.read() == big
        assert b.delete(["w/a.json", "w/b.json", "w/never.json"]) == []
        with pytest.raises(ClientError) as gone:
            b.head("w/a.json")
        assert is_missing(gone.value)
        assert [o.key for o in b.list("w/")] == ["w/big.bin"]
        assert b.versioning() is None


def test_an_unchanged_listing_is_known_by_its_pages_and_a_change_lists_again(
        seaweed, s3_client, bucket, aws_env, monkeypatch):
    monkeypatch.setattr(fast, "PAGE_KEYS", 2)  # five objects make three pages, as 5,000 would
    put(s3_client, bucket, {f"p/k{i}&{i}.py": b"%d" % i for i in range(5)})
    counting = proxied(seaweed, rate=0.0)
    try:
        with Bucket(RemoteConfig(endpoint_url=counting.url), bucket) as lister:
            objects, known = whole(lister, "p/")
            assert [o.key for o in objects] == [f"p/k{i}&{i}.py" for i in range(5)] and counting.requests == 3
            assert lister.unchanged("p/", known) and counting.requests == 6

            s3_client.put_object(Bucket=bucket, Key="p/k4&4.py", Body=b"changed")  # on the last page
            assert not lister.unchanged("p/", known)
            objects, again = whole(lister, "p/")
            assert again != known and objects[-1].size == len(b"changed")
            assert counting.requests == 6 + 3 + 3  # the pages up to the change, then a full listing

            s3_client.put_object(Bucket=bucket, Key="p/k0&0.py", Body=b"changed too")  # on the first page
            assert not lister.unchanged("p/", again)
            objects, third = whole(lister, "p/")
            assert third not in (known, again) and objects[0].size == len(b"changed too")
            assert counting.requests == 12 + 1 + 3
            assert lister.unchanged("p/", third) and lister.fallbacks == 0
    finally:
        counting.close()


def whole(lister: Bucket, prefix: str) -> tuple[list, str]:
    """A whole listing, read page by page, and its fingerprint."""
    pages = lister.pages(prefix)
    return list(pages), pages.fingerprint


def test_a_level_listing_that_needs_a_folder_stops_once_it_has_passed_it(
        seaweed, s3_client, bucket, aws_env, monkeypatch):
    monkeypatch.setattr(fast, "PAGE_KEYS", 2)
    put(s3_client, bucket, {f"p/f{i}.py": b"x" for i in range(5)} | {"p/-early/a.py": b"a"})
    counting = proxied(seaweed, rate=0.0)
    try:
        with Bucket(RemoteConfig(endpoint_url=counting.url), bucket) as lister:
            objects, folders = lister.list_level("p/", needs="p/.objsync/")
            # Page one ends at p/f0.py, past where p/.objsync/ would sort: the other two pages are not read.
            assert (folders, [o.key for o in objects], counting.requests) == (["p/-early/"], ["p/f0.py"], 1)

            s3_client.put_object(Bucket=bucket, Key="p/.objsync/manifests/r.json", Body=b"{}")
            objects, folders = lister.list_level("p/", needs="p/.objsync/")
            assert folders == ["p/-early/", "p/.objsync/"] and len(objects) == 5 and counting.requests == 1 + 4
    finally:
        counting.close()


class _FailsOnce(FaultProxy):
    """Answers request number `nth` (1-based) with a 500, and forwards every other one."""

    def __init__(self, upstream, nth: int) -> None:
        self.nth = nth
        super().__init__(upstream, rate=0.0)

    def _choose(self, carries_object: bool) -> str | None:
        super()._choose(carries_object)
        if self.requests == self.nth:
            self.injected["500"] += 1
            return "500"
        return None


def test_a_listing_read_page_by_page_goes_on_through_boto3_from_the_page_that_failed(
        seaweed, s3_client, bucket, aws_env, monkeypatch):
    monkeypatch.setattr(fast, "PAGE_KEYS", 2)
    put(s3_client, bucket, {f"p/k{i}.py": b"%d" % i for i in range(5)})
    host, port = seaweed.endpoint_url.rsplit("//", 1)[1].split(":")
    with Bucket(RemoteConfig(endpoint_url=seaweed.endpoint_url), bucket) as lister:
        pages = lister.pages("p/")
        keys = [o.key for o in pages]
        assert keys == [f"p/k{i}.py" for i in range(5)] and lister.fallbacks == 0
        assert whole(lister, "p/")[1] == pages.fingerprint and lister.unchanged("p/", pages.fingerprint)
        s3_client.put_object(Bucket=bucket, Key="p/k3.py", Body=b"changed")
        assert not lister.unchanged("p/", pages.fingerprint)

    faulty = _FailsOnce((host, int(port)), nth=2)  # the second page
    try:
        with Bucket(RemoteConfig(endpoint_url=faulty.url), bucket) as lister:
            pages = lister.pages("p/")
            assert [o.key for o in pages] == keys  # each object once, in order
            assert lister.fallbacks == 1 and faulty.injected["500"] == 1
            # A page read without its bytes is digested from its objects: the fast path takes it for a change once.
            assert not lister.unchanged("p/", pages.fingerprint) and whole(lister, "p/")[1] != pages.fingerprint
    finally:
        faulty.close()

    # Without the fast path, every page comes through boto3, and an unchanged listing is still known as such.
    with Bucket(RemoteConfig(endpoint_url=seaweed.endpoint_url, fast_get=False), bucket) as slow:
        pages = slow.pages("p/")
        assert [o.key for o in pages] == keys and slow.unchanged("p/", pages.fingerprint)
        s3_client.put_object(Bucket=bucket, Key="p/k1.py", Body=b"changed too")
        assert not slow.unchanged("p/", pages.fingerprint)

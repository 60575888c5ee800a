"""A LIST-mode pass planned and fetched as its listing is read, on a MemoryBucket served page by page."""

from __future__ import annotations

import pytest
from support.memory_bucket import MemoryBucket, Request
from support.pulls import open_rig

from objsync.model import Kind, RemoteObject
from objsync.pull import plan

FILES = {f"dags/f{i:02}.py": b"%d" % i for i in range(20)}


class PagedBucket(MemoryBucket):
    """Lists two keys a page; `broken_page` fails when it is reached, and `shuffled` lists out of order."""

    def __init__(self, name: str = "memory") -> None:
        super().__init__(name)
        self.broken_page: int | None = None
        self.shuffled = False

    def page(self, prefix: str, token: str | None) -> tuple[list[RemoteObject], str | None, str]:
        start = int(token or 0)
        if start // 2 == self.broken_page:
            raise ConnectionError("connection reset by peer")
        whole = super().page(prefix, None)[0]
        self.requests[-1] = Request("LIST", f"{prefix}@{start}")
        if self.shuffled:
            whole.reverse()
        following = str(start + 2) if start + 2 < len(whole) else None
        return whole[start:start + 2], following, f"{start}:" + ",".join(o.etag for o in whole[start:start + 2])


@pytest.fixture
def bucket(monkeypatch):
    monkeypatch.setattr(plan, "CHUNK", 2)  # the cache is asked a page at a time, as S3's pages of 1,000 would be
    b = PagedBucket()
    b.put_many(FILES)
    return b


def test_fetches_start_before_the_listing_is_read_to_its_end(bucket, tmp_path):
    with open_rig(tmp_path / "d", bucket) as rig:
        bucket.requests.clear()
        report = rig.run()
        assert report.ok and report.fetched == 20 and report.listed == 20
        ops = [f"{r.op} {r.target}" for r in bucket.requests]
        # A page, a page of cache lookups and a batch ahead, but no more.
        assert ops.index("GET dags/f00.py") < ops.index("LIST dags/@8") < ops.index("GET dags/f19.py"), ops
        assert rig.files() == {k[5:]: v for k, v in FILES.items()}


def test_a_listing_that_breaks_off_deletes_nothing_and_the_next_pass_finishes(bucket, tmp_path):
    def break_off():
        bucket.broken_page = 6

    first, written = broken_then_whole(bucket, tmp_path, break_off)
    assert "connection reset" in first.errors[0].error
    assert {"f00.py", "f01.py"} <= written  # what was planned before the break was written


def test_a_bucket_that_lists_out_of_order_is_listed_whole_and_sorted_from_the_next_pass(bucket, tmp_path):
    def shuffle():
        bucket.shuffled = True

    assert "out of order" in broken_then_whole(bucket, tmp_path, shuffle)[0].errors[0].error


def broken_then_whole(bucket: PagedBucket, tmp_path, breaks):
    """A pass whose listing `breaks` reports it and deletes nothing; the next pass mirrors the prefix.

    Returns the first pass's report, and the files it left.
    """
    with open_rig(tmp_path / "d", bucket) as rig:
        (tmp_path / "d/stray.py").write_bytes(b"not in the bucket")
        breaks()
        first = rig.run()
        assert [p.kind for p in first.errors] == [Kind.LISTING]
        assert first.deleted == 0 and (tmp_path / "d/stray.py").exists()
        written = set(rig.files())
        bucket.broken_page = None
        again = rig.run()
        assert again.ok and again.deleted == 1
        assert rig.files() == {k[5:]: v for k, v in FILES.items()}
    return first, written


def test_a_restart_remembers_a_bucket_that_lists_out_of_order(bucket, tmp_path):
    bucket.shuffled = True
    with open_rig(tmp_path / "d", bucket) as rig:
        assert not rig.run().ok
    with open_rig(tmp_path / "d", bucket) as rig:  # a new process on the same folder
        assert rig.run().ok and rig.files() == {k[5:]: v for k, v in FILES.items()}


def test_an_s3_express_directory_bucket_is_listed_whole_and_sorted_from_the_first_pass(tmp_path, monkeypatch):
    monkeypatch.setattr(plan, "CHUNK", 2)
    bucket = PagedBucket("dags--usw2-az1--x-s3")  # directory buckets do not list in key order
    bucket.put_many(FILES)
    bucket.shuffled = True
    with open_rig(tmp_path / "d", bucket) as rig:
        first = rig.run()
        assert first.ok and first.fetched == 20, first.errors
        ops = [f"{r.op} {r.target}" for r in bucket.requests]
        assert ops.index("LIST dags/@18") < min(i for i, op in enumerate(ops) if op.startswith("GET"))  # read whole first

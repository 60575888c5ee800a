"""One pull pass, end to end on a MemoryBucket: what a failed fetch, the delete guard and a stop leave behind.

Each test runs the production Session (listing, planner, real writer, publisher, cache) and only
the bucket is in memory, so the rules that keep a wrong listing from emptying the folder can
fail a fast test, not just a SeaweedFS one.
"""

from __future__ import annotations

import threading

import pytest
from support.memory_bucket import MemoryBucket, Request
from support.pulls import open_rig, publish

from objsync.model import Kind, Mode
from objsync.pull.decide import Rules


def test_a_pass_mirrors_the_prefix_and_the_next_one_reads_nothing(tmp_path):
    bucket = MemoryBucket()
    bucket.put_many({"dags/a.py": b"a", "dags/lib/b.py": b"bb", "dagsx/c.py": b"c", "other/d.py": b"d"})
    with open_rig(tmp_path / "d", bucket) as rig:
        first = rig.run()
        assert (first.ok, first.mode, first.fetched, first.bytes) == (True, Mode.LIST, 2, 3)
        assert rig.files() == {"a.py": b"a", "lib/b.py": b"bb"}
        # Each file carries the object's Last-Modified, and the cache records exactly what is in place.
        listed = {o.key: o for o in bucket.list("dags/")}
        assert (rig.dest / "lib/b.py").stat().st_mtime_ns == listed["dags/lib/b.py"].mtime_ns
        assert set(rig.state.entries) == {"a.py", "lib/b.py"} and rig.claims_only_what_is_in_place()

        bucket.requests.clear()
        again = rig.run()
        assert (again.ok, again.fetched, again.skipped) == (True, 0, 2)
        assert bucket.requests == [Request("LIST", "dags/")]


def _break_read(bucket: MemoryBucket, key: str) -> None:
    bucket.broken.add(key)


def _change_before_read(bucket: MemoryBucket, key: str) -> None:
    """The object is overwritten after the LIST and before its GET: the GET's If-Match fails."""
    bucket.before_read = lambda k: k == key and bucket.put(key, b"a, written again during the pass")


@pytest.mark.parametrize("fault, error", [(_break_read, "InternalError (HTTP 500)"),
                                          (_change_before_read, "PreconditionFailed (HTTP 412)")],
                         ids=["a failed read", "an object changed under its read"])
def test_a_failed_fetch_holds_back_every_delete_until_a_pass_in_which_all_succeed(tmp_path, fault, error):
    bucket = MemoryBucket()
    bucket.put_many({"dags/a.py": b"a1", "dags/b.py": b"b1", "dags/old.py": b"old", "dags/lib/old2.py": b"o2"})
    with open_rig(tmp_path / "d", bucket) as rig:
        assert rig.run().ok
        recorded = rig.state.entries["a.py"]
        bucket.put_many({"dags/a.py": b"a2", "dags/c.py": b"c"})
        bucket.delete(["dags/old.py", "dags/lib/old2.py"])
        fault(bucket, "dags/a.py")

        held = rig.run()
        assert [(p.key, p.kind) for p in held.errors] == [("dags/a.py", Kind.FETCH)]
        assert held.errors[0].error.startswith(error) and held.transfer_failed
        # The listing that lacks old.py may be the wrong one: nothing is deleted on its word.
        assert held.deleted == 0 and held.fetched == 1
        assert rig.files() == {"a.py": b"a1", "b.py": b"b1", "c.py": b"c", "old.py": b"old", "lib/old2.py": b"o2"}
        assert rig.state.entries["a.py"] == recorded and rig.claims_only_what_is_in_place()

        bucket.broken.clear()
        bucket.before_read = None
        healed = rig.run()
        assert healed.ok and (healed.fetched, healed.deleted) == (1, 2)
        assert rig.files() == {"a.py": bucket.body("dags/a.py"), "b.py": b"b1", "c.py": b"c"}
        assert not (rig.dest / "lib").exists()  # the folder emptied by the deletes is pruned


@pytest.mark.parametrize("left, why", [(5, "15 deletes exceed the default --max-delete"),
                                       (0, "the listing is empty but 20 local files exist")])
def test_the_delete_guard_deletes_nothing_when_a_listing_would_empty_most_of_the_folder(tmp_path, left, why):
    everything = {f"f{i:02}.py": b"%d" % i for i in range(20)}
    kept = dict(sorted(everything.items())[:left])
    bucket = MemoryBucket()
    bucket.put_many({f"dags/{rel}": body for rel, body in everything.items()})
    with open_rig(tmp_path / "d", bucket) as rig:
        assert rig.run().fetched == 20
        bucket.delete([f"dags/{rel}" for rel in everything if rel not in kept])
        report = rig.run()
        assert report.deleted == 0 and rig.files() == everything
        assert [(p.kind, p.key) for p in report.errors] == [(Kind.GUARD, "s3://memory/dags")]
        assert why in report.errors[0].error and not report.ok
    # The same listing goes through once the user says that the folder may shrink that much.
    with open_rig(tmp_path / "d", bucket, rules=Rules(max_delete="100%", allow_empty=True)) as rig:
        report = rig.run()
        assert report.ok and report.deleted == 20 - left and rig.files() == kept


def _stop_at(bucket: MemoryBucket, key: str) -> threading.Event:
    """A stop event that is set while `key` is being read, as a SIGTERM arriving then would."""
    stop = threading.Event()
    bucket.before_read = lambda k: k == key and stop.set()
    return stop


# The rig fetches in batches of two, in key order: n1 n2 | n3 n4. A stop while n2 is read ends the
# pass between two batches, with no failed fetch; one while n1 is read drops n2's read too.
@pytest.mark.parametrize("trigger, cancelled", [("dags/n2.py", ()), ("dags/n1.py", ("dags/n2.py",))],
                         ids=["between two batches", "inside a batch"])
def test_an_interrupted_pass_deletes_nothing_and_the_cache_claims_only_what_arrived(tmp_path, trigger, cancelled):
    bucket = MemoryBucket()
    bucket.put_many({"dags/keep.py": b"k", "dags/old.py": b"old"})
    new = {f"n{i}.py": b"new %d" % i for i in range(1, 5)}
    with open_rig(tmp_path / "d", bucket) as rig:
        assert rig.run().ok
        bucket.put_many({f"dags/{rel}": body for rel, body in new.items()})
        bucket.delete(["dags/old.py"])

        report = rig.run(_stop_at(bucket, trigger))
        assert report.interrupted and not report.ok and report.deleted == 0
        assert sorted(p.key for p in report.errors) == list(cancelled)
        assert all("stopped before the download finished" in p.error for p in report.errors)
        assert rig.files() == {"keep.py": b"k", "old.py": b"old", "n1.py": b"new 1"} | (
            {"n2.py": b"new 2"} if not cancelled else {})
        assert rig.claims_only_what_is_in_place() and "n3.py" not in rig.state.entries
        assert not list((rig.dest / ".objsync/tmp").iterdir())  # no temp file left behind

        bucket.before_read = None
        finished = rig.run()
        assert finished.ok and finished.deleted == 1
        assert rig.files() == {"keep.py": b"k"} | new


def test_an_interrupted_manifest_pass_is_read_again_by_the_next_one(tmp_path):
    bucket = MemoryBucket()
    publish(bucket, "a", {"dag.py": b"v1", "old.py": b"old"})
    v2 = {"dag.py": b"v2"} | {f"n{i}.py": b"new %d" % i for i in range(1, 4)}
    with open_rig(tmp_path / "d", bucket) as rig:
        assert rig.run().mode == Mode.MANIFEST
        publish(bucket, "a", v2)
        bucket.delete(["dags/a/old.py"])

        report = rig.run(_stop_at(bucket, "dags/a/n1.py"))  # batches: dag.py n1.py | n2.py n3.py
        assert report.interrupted and report.deleted == 0 and report.mode == Mode.MANIFEST
        assert (rig.dest / "a/old.py").exists() and rig.claims_only_what_is_in_place()

        # Had the stopped pass recorded version 2 as applied, this poll would be quiet and n2, n3 never come.
        bucket.before_read = None
        bucket.requests.clear()
        finished = rig.run()
        assert Request("GET", "dags/.objsync/manifests/a.json") in bucket.requests
        assert finished.ok and finished.deleted == 1
        assert rig.files() == {f"a/{rel}": body for rel, body in v2.items()}


def test_a_prefix_with_nothing_to_mirror_is_named_once_per_run_of_empty_passes(tmp_path, caplog):
    bucket = MemoryBucket()
    bucket.put_many({"dagz/a.py": b"a"})  # the prefix is dags/: a typo away
    with open_rig(tmp_path / "d", bucket) as rig:
        warned = lambda: [r.getMessage() for r in caplog.records if "holds no objects" in r.getMessage()]  # noqa: E731
        assert rig.run().ok and rig.run().ok
        assert warned() == [f"s3://{bucket.name}/dags holds no objects to mirror, so {rig.dest} stays as it is; "
                            f"check the prefix"]
        bucket.put_many({"dags/a.py": b"a"})
        assert rig.run().fetched == 1 and len(warned()) == 1
        bucket.delete(["dags/a.py"])
        held = rig.run()  # the delete guard's error already says to check the prefix
        assert held.errors[0].kind == Kind.GUARD and len(warned()) == 1
        (rig.dest / "a.py").unlink()
        assert rig.run().ok and len(warned()) == 2

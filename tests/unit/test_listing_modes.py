"""Where a pass's listing comes from, on a MemoryBucket: LIST mode, manifest mode, and the way between them."""

from __future__ import annotations

from support.memory_bucket import MemoryBucket, Request
from support.pulls import open_rig, publish

from objsync.layout import manifest_key
from objsync.model import Kind, Mode
from objsync.paths import Filter
from objsync.pull import pipeline
from objsync.pull.decide import Rules

MANIFESTS = "dags/.objsync/manifests/"


def test_manifest_mode_starts_when_a_manifest_appears_and_ends_when_the_last_one_goes(tmp_path):
    bucket = MemoryBucket()
    bucket.put_many({"dags/a/x.py": b"x1", "dags/top.py": b"t"})
    with open_rig(tmp_path / "d", bucket) as rig:
        report = rig.run()
        assert report.mode == Mode.LIST and rig.files() == {"a/x.py": b"x1", "top.py": b"t"}

        publish(bucket, "a", {"x.py": b"x2", "y.py": b"y"})
        bucket.put("dags/a/stray.py", b"stray")  # written after the push: in no manifest
        report = rig.run()
        assert report.ok and report.mode == Mode.MANIFEST
        # The manifest is the truth for its folder; a folder without one is still listed.
        assert rig.files() == {"a/x.py": b"x2", "a/y.py": b"y", "top.py": b"t"}

        bucket.delete([manifest_key("dags", "a")])
        report = rig.run()
        assert report.ok and report.mode == Mode.LIST
        assert rig.files() == {"a/x.py": b"x2", "a/y.py": b"y", "a/stray.py": b"stray", "top.py": b"t"}
        # Nothing left that would start the next run in manifest mode.
        assert [name for name in rig.state.memos if name.startswith("manifest:")] == []


def test_a_quiet_manifest_poll_is_one_list_and_a_change_reads_only_what_changed(tmp_path):
    bucket = MemoryBucket()
    publish(bucket, "a", {"dag.py": b"a", "lib/h.py": b"h"})
    publish(bucket, "b", {"dag.py": b"b1", "same.py": b"s"})
    with open_rig(tmp_path / "d", bucket) as rig:
        assert rig.run().mode == Mode.MANIFEST

        bucket.requests.clear()
        quiet = rig.run()
        assert (quiet.ok, quiet.mode, quiet.fetched) == (True, Mode.MANIFEST, 0)
        assert bucket.requests == [Request("LIST", MANIFESTS)]

        publish(bucket, "b", {"dag.py": b"b2", "same.py": b"s"})
        bucket.requests.clear()
        changed = rig.run()
        assert changed.ok and changed.fetched == 1 and rig.files()["b/dag.py"] == b"b2"
        assert [r for r in bucket.requests if r.op != "PUT"] == [
            Request("LIST", MANIFESTS), Request("GET", MANIFESTS + "b.json"), Request("GET", "dags/b/dag.py")]


def test_a_refused_manifest_keeps_the_previous_version_and_holds_a_repo_never_seen_valid(tmp_path):
    bucket = MemoryBucket()
    publish(bucket, "a", {"x.py": b"x1", "y.py": b"y"})
    bucket.put_many({"dags/c/new.py": b"new", MANIFESTS + "c.json": b"[]"})
    d = tmp_path / "d"
    (d / "c").mkdir(parents=True)
    (d / "c/old.py").write_bytes(b"old")
    with open_rig(d, bucket) as rig:
        first = rig.run()
        assert [(p.key, p.kind) for p in first.errors] == [(MANIFESTS + "c.json", Kind.REJECTED)]
        assert "manifest of repo 'c' refused" in first.errors[0].error
        # c's folder is neither filled from a LIST nor emptied: its files wait for a valid manifest.
        assert rig.files() == {"a/x.py": b"x1", "a/y.py": b"y", "c/old.py": b"old"}

        bucket.put_many({"dags/a/x.py": b"x2", MANIFESTS + "a.json": b"{not json"})
        second = rig.run()
        assert sorted(p.key for p in second.errors) == [MANIFESTS + "a.json", MANIFESTS + "c.json"]
        assert rig.files() == {"a/x.py": b"x1", "a/y.py": b"y", "c/old.py": b"old"}

        # The previous version is still looked after: a file of it lost locally comes back, read
        # by its version id although the object has been overwritten since.
        (d / "a/x.py").unlink()
        rig.session.request_rescan()
        bucket.requests.clear()
        third = rig.run()
        assert rig.files() == {"a/x.py": b"x1", "a/y.py": b"y", "c/old.py": b"old"}
        assert len(third.errors) == 2 and third.fetched == 1
        assert not [r for r in bucket.requests if r.op == "GET" and r.target.startswith(MANIFESTS)]


def test_a_quiet_list_mode_poll_skips_the_plan_until_the_listing_changes_or_a_rescan(tmp_path):
    bucket = MemoryBucket()
    bucket.put_many({"dags/a/x.py": b"x1", "dags/b/y.py": b"y1", "dags/bad//key.py": b"k"})
    with open_rig(tmp_path / "d", bucket) as rig:
        first = rig.run()
        assert first.mode == Mode.LIST and rig.files() == {"a/x.py": b"x1", "b/y.py": b"y1"}
        rejected = [e.key for e in first.errors if e.kind == Kind.REJECTED]
        assert rejected == ["dags/bad//key.py"]

        (tmp_path / "d" / "a" / "x.py").unlink()  # behind objsync's back
        quiet = rig.run()
        assert quiet.skipped == quiet.listed == 3 and quiet.fetched == 0
        assert [e.key for e in quiet.errors] == rejected  # still reported at every poll
        assert "a/x.py" not in rig.files()  # trusted until the next rescan

        rig.session.request_rescan()
        assert rig.run().fetched == 1 and rig.files()["a/x.py"] == b"x1"

        bucket.put("dags/b/y.py", b"y2")
        changed = rig.run()
        assert changed.fetched == 1 and rig.files()["b/y.py"] == b"y2"
        assert rig.run().skipped == 3


def test_a_list_mode_pass_that_failed_is_not_trusted_by_the_next_poll(tmp_path):
    bucket = MemoryBucket()
    bucket.put_many({"dags/a/x.py": b"x1", "dags/a/z.py": b"z1"})
    bucket.broken.add("dags/a/z.py")
    with open_rig(tmp_path / "d", bucket) as rig:
        assert not rig.run().ok and rig.files() == {"a/x.py": b"x1"}
        bucket.broken.clear()
        again = rig.run()  # the same listing, but the last pass did not finish its work
        assert again.ok and again.fetched == 1 and rig.files() == {"a/x.py": b"x1", "a/z.py": b"z1"}


def test_a_manifest_damaged_on_the_way_is_read_again_not_refused(tmp_path):
    bucket = MemoryBucket()
    publish(bucket, "a", {"dag.py": b"a"})
    bucket.damaged.add(manifest_key("dags", "a"))
    with open_rig(tmp_path / "d", bucket) as rig:
        first = rig.run()
        (problem,) = first.errors
        assert problem.kind == Kind.LISTING and "arrived damaged" in problem.error and rig.files() == {}
        second = rig.run()  # the same ETag: a refusal would be remembered, a failed read is not
        assert second.ok and rig.files() == {"a/dag.py": b"a"}


def test_a_cold_first_pass_reads_each_manifest_by_name_instead_of_listing_them(tmp_path):
    bucket = MemoryBucket()
    publish(bucket, "a", {"dag.py": b"a", "lib/h.py": b"h"})
    bucket.put_many({"dags/plain/p.py": b"p", "dags/top.py": b"t"})
    bucket.requests.clear()
    with open_rig(tmp_path / "d", bucket) as rig:
        first = rig.run()
        assert first.ok and first.mode == Mode.MANIFEST
        assert rig.files() == {"a/dag.py": b"a", "a/lib/h.py": b"h", "plain/p.py": b"p", "top.py": b"t"}
        lists = [r for r in bucket.requests if r.op == "LIST"]
        # The top level once; the manifests' folder never; the folder without a manifest, for its files.
        assert lists == [Request("LIST", "dags/"), Request("LIST", "dags/plain/")]
        assert [r for r in bucket.requests if r.target.startswith(MANIFESTS)] == [
            Request("GET", MANIFESTS + "a.json"), Request("GET", MANIFESTS + "plain.json")]

        bucket.requests.clear()
        assert rig.run().ok
        assert Request("LIST", MANIFESTS) in bucket.requests  # later passes list the manifests, as before


def test_a_manifest_that_cannot_be_read_by_name_sends_the_first_pass_to_the_manifests_listing(tmp_path):
    bucket = MemoryBucket()
    publish(bucket, "a", {"dag.py": b"a"})
    publish(bucket, "b", {"dag.py": b"b"})
    bucket.broken.add(MANIFESTS + "b.json")
    bucket.requests.clear()
    with open_rig(tmp_path / "d", bucket) as rig:
        first = rig.run()
        assert Request("LIST", MANIFESTS) in bucket.requests
        assert [(p.key, p.kind) for p in first.errors] == [(MANIFESTS + "b.json", Kind.LISTING)]
        assert rig.files() == {"a/dag.py": b"a"}  # b is held until its manifest reads

        bucket.broken.clear()
        assert rig.run().ok and rig.files() == {"a/dag.py": b"a", "b/dag.py": b"b"}


def test_a_restart_on_an_unchanged_listing_plans_nothing_while_local_files_are_as_the_cache_says(
        tmp_path, monkeypatch):
    bucket = MemoryBucket()
    bucket.put_many({"dags/a/x.py": b"x", "dags/top.py": b"t"})
    d = tmp_path / "d"
    planned = []
    real = pipeline.Planned
    monkeypatch.setattr(pipeline, "Planned", lambda *a, **k: planned.append(1) or real(*a, **k))
    with open_rig(d, bucket) as rig:
        assert rig.run().ok and planned == [1]

    with open_rig(d, bucket) as rig:  # a new process on the same folder
        bucket.requests.clear()
        again = rig.run()
        assert again.ok and again.listed == 2 and planned == [1]  # no plan
        assert bucket.requests == [Request("LIST", "dags/")]  # the listing only: it held no manifest

    (d / "a/x.py").write_bytes(b"changed behind objsync's back")
    with open_rig(d, bucket) as rig:
        assert rig.run().ok and planned == [1, 1] and rig.files() == {"a/x.py": b"x", "top.py": b"t"}

    with open_rig(d, bucket, rules=Rules(filter=Filter(excludes=("top.py",)))) as rig:
        assert rig.run().ok and planned == [1, 1, 1]  # what was kept under other rules is not used


def test_a_daemon_rescan_of_an_unchanged_listing_looks_at_local_files_without_a_plan(tmp_path, monkeypatch):
    bucket = MemoryBucket()
    bucket.put_many({"dags/a/x.py": b"x", "dags/b/y.py": b"y"})
    planned = []
    real = pipeline.Planned
    monkeypatch.setattr(pipeline, "Planned", lambda *a, **k: planned.append(1) or real(*a, **k))
    with open_rig(tmp_path / "d", bucket) as rig:
        assert rig.run().ok and planned == [1]
        rig.session.listing.rescan_every = 0  # every poll is due for a look at local files
        rescan = rig.run()
        assert rescan.ok and rescan.skipped == 2 and planned == [1]
        (tmp_path / "d/b/y.py").unlink()
        assert rig.run().fetched == 1 and planned == [1, 1] and rig.files()["b/y.py"] == b"y"


def test_a_restart_on_an_unchanged_list_mode_prefix_is_one_list(tmp_path):
    bucket = MemoryBucket()
    bucket.put_many({"dags/a/x.py": b"x", "dags/top.py": b"t"})
    with open_rig(tmp_path / "d", bucket) as rig:
        assert rig.run().mode == Mode.LIST
    bucket.requests.clear()
    with open_rig(tmp_path / "d", bucket) as rig:
        again = rig.run()
        assert (again.ok, again.mode, again.skipped, again.fetched) == (True, Mode.LIST, 2, 0)
        # The listing is the last clean pass's, which held no manifest: the top level is not looked at.
        assert bucket.requests == [Request("LIST", "dags/")]

    publish(bucket, "a", {"x.py": b"x2"})  # a changed listing: the restart looks for manifests again
    with open_rig(tmp_path / "d", bucket) as rig:
        changed = rig.run()
        assert changed.ok and changed.mode == Mode.MANIFEST and rig.files()["a/x.py"] == b"x2"


def test_a_restart_on_a_listing_with_keys_among_the_manifests_still_looks_for_manifests(tmp_path):
    bucket = MemoryBucket()
    bucket.put_many({"dags/a/x.py": b"x", MANIFESTS + "notes.txt": b"not a manifest"})
    with open_rig(tmp_path / "d", bucket) as rig:
        assert rig.run().mode == Mode.LIST
    bucket.requests.clear()
    with open_rig(tmp_path / "d", bucket) as rig:
        again = rig.run()
        assert again.mode == Mode.LIST and again.fetched == 0
        # The top level, a manifest looked for by name, then the listing.
        assert bucket.requests == [Request("LIST", "dags/"), Request("GET", MANIFESTS + "a.json"),
                                   Request("LIST", "dags/")]

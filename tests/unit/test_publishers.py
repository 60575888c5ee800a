"""How a pass becomes what readers see, on a MemoryBucket: in place, or (--atomic) whole trees behind symlinks."""

from __future__ import annotations

import os
from contextlib import contextmanager

from support.memory_bucket import MemoryBucket
from support.pulls import open_rig, publish

from objsync.model import Kind

STORE = ".objsync/snapshots"
FIRST = {"dags/a/x.py": b"x1", "dags/a/lib/h.py": b"h", "dags/b/z.py": b"z", "dags/top.py": b"t1",
         "dags/gone.py": b"g"}


@contextmanager
def synced(tmp_path, *, atomic: bool = True):
    """A destination brought in sync with FIRST by one pass."""
    bucket = MemoryBucket()
    bucket.put_many(FIRST)
    with open_rig(tmp_path / "d", bucket, atomic=atomic) as rig:
        assert rig.run().ok
        yield rig


def shown(rig, top: str) -> str:
    """The tree that `top` shows: where its symlink points, inside the snapshot store."""
    link = os.readlink(rig.dest / top)
    assert link.startswith(f"{STORE}/{top}/"), link
    return link


def test_in_place_renames_each_file_over_its_path_and_prunes_emptied_folders(tmp_path):
    with synced(tmp_path, atomic=False) as rig:
        before = (rig.dest / "a/x.py").stat().st_ino
        rig.bucket.put("dags/a/x.py", b"x2")
        rig.bucket.delete(["dags/a/lib/h.py"])
        report = rig.run()
        assert report.ok and (report.fetched, report.deleted) == (1, 1)
        assert not (rig.dest / "a").is_symlink() and not (rig.dest / "a/lib").exists()
        # A new file renamed over the old one: a reader holding the old one keeps whole old bytes.
        assert (rig.dest / "a/x.py").stat().st_ino != before
        assert rig.files() == {"a/x.py": b"x2", "b/z.py": b"z", "top.py": b"t1", "gone.py": b"g"}


def test_atomic_publishes_a_changed_folder_as_a_new_tree_that_hard_links_what_stayed(tmp_path):
    with synced(tmp_path) as rig:
        assert rig.files() == {k[5:]: v for k, v in FIRST.items()}
        first_a, first_b = shown(rig, "a"), shown(rig, "b")
        assert not (rig.dest / "top.py").is_symlink()  # files directly in the destination stay files

        rig.bucket.put_many({"dags/a/x.py": b"x2", "dags/top.py": b"t2"})
        rig.bucket.delete(["dags/gone.py"])
        report = rig.run()
        assert report.ok and (report.fetched, report.deleted) == (2, 1)
        second_a = shown(rig, "a")
        assert second_a != first_a and shown(rig, "b") == first_b  # only the changed folder gets a tree
        assert rig.files() == {"a/x.py": b"x2", "a/lib/h.py": b"h", "b/z.py": b"z", "top.py": b"t2"}
        # The unchanged file is one inode in both trees, and the old tree stays whole for its readers.
        assert os.stat(rig.dest / first_a / "lib/h.py").st_ino == os.stat(rig.dest / second_a / "lib/h.py").st_ino
        assert (rig.dest / first_a / "x.py").read_bytes() == b"x1"
        assert (rig.dest / (first_a + ".retired")).exists()
        assert rig.claims_only_what_is_in_place()


def test_atomic_discards_a_tree_with_a_failed_fetch_and_the_folder_keeps_its_tree(tmp_path):
    with synced(tmp_path) as rig:
        before = shown(rig, "a")
        rig.bucket.put_many({"dags/a/x.py": b"x2", "dags/a/new.py": b"n", "dags/top.py": b"t2"})
        rig.bucket.broken.add("dags/a/x.py")

        report = rig.run()
        assert [(p.key, p.kind) for p in report.errors] == [("dags/a/x.py", Kind.FETCH)]
        # new.py arrived, but a tree without the new x.py would be a mix of two versions: none is shown.
        assert shown(rig, "a") == before and report.deleted == 0
        assert rig.files() == {"a/x.py": b"x1", "a/lib/h.py": b"h", "b/z.py": b"z", "top.py": b"t2",
                               "gone.py": b"g"}
        assert "a/new.py" not in rig.state.entries and rig.claims_only_what_is_in_place()
        assert not [p.name for p in (rig.dest / STORE / "a").iterdir() if p.name.startswith(".")]

        rig.bucket.broken.clear()
        healed = rig.run()
        assert healed.ok and shown(rig, "a") != before
        assert rig.files()["a/x.py"] == b"x2" and rig.files()["a/new.py"] == b"n"


def test_atomic_keeps_the_tree_of_a_folder_with_deletes_while_another_fetch_fails(tmp_path):
    with synced(tmp_path) as rig:
        before = shown(rig, "a")
        rig.bucket.delete(["dags/a/lib/h.py"])  # a's new tree would only leave a file out
        rig.bucket.put("dags/b/z.py", b"z2")
        rig.bucket.broken.add("dags/b/z.py")

        report = rig.run()
        assert [p.key for p in report.errors] == ["dags/b/z.py"] and report.deleted == 0
        assert shown(rig, "a") == before and rig.files()["a/lib/h.py"] == b"h"
        assert "a/lib/h.py" in rig.state.entries

        rig.bucket.broken.clear()
        healed = rig.run()
        assert healed.ok and healed.deleted == 1 and "a/lib/h.py" not in rig.files()


def test_atomic_names_a_tree_after_its_manifest(tmp_path):
    bucket = MemoryBucket()
    m = publish(bucket, "a", {"dag.py": b"a"})
    with open_rig(tmp_path / "d", bucket, atomic=True) as rig:
        assert rig.run().ok
        assert shown(rig, "a").startswith(f"{STORE}/a/{m.id}-")
        assert rig.files() == {"a/dag.py": b"a"}

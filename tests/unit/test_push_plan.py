import pytest

from objsync.manifest import FileEntry, Manifest
from objsync.model import RemoteObject
from objsync.push.plan import PushRules, plan_push

MD5 = "0123456789abcdef0123456789abcdef"
OTHER = "f" * 32
MULTI = "89abcdef0123456789abcdef01234567-2"
FOLDER = "dags/repo/"


def local(path, size=10, md5=MD5, etag=None):
    return FileEntry(path, size, etag or md5, md5)


def obj(path, etag=MD5, size=10, folder=FOLDER):
    return RemoteObject(folder + path, etag, size, 0)


def previous(*files):
    return Manifest("repo", files, None, "2024-01-01T00:00:00Z", "0.1.0")


def test_new_changed_and_unchanged():
    p = plan_push([local("new.py"), local("same.py"), local("edited.py", md5=OTHER), local("grown.py", size=11)],
                  [obj("same.py"), obj("edited.py"), obj("grown.py")], FOLDER)
    assert sorted((t.file.path, t.key, t.reason) for t in p.transfers) == [
        ("edited.py", "dags/repo/edited.py", "changed"), ("grown.py", "dags/repo/grown.py", "changed"),
        ("new.py", "dags/repo/new.py", "new")]
    assert p.unchanged == (FileEntry("same.py", 10, MD5, MD5),)
    assert p.deletes == () and p.blocked is None and p.bytes == 31


def test_multipart_etag_computed_locally_matches():
    p = plan_push([local("big.bin", etag=MULTI)], [obj("big.bin", etag=MULTI)], FOLDER)
    assert p.transfers == () and p.unchanged[0].etag == MULTI and p.unchanged[0].md5 == MD5


def test_multipart_etag_with_other_part_size_is_uploaded_again():
    p = plan_push([local("big.bin", etag=MULTI)], [obj("big.bin", etag=OTHER[:32] + "-3")], FOLDER)
    assert [t.reason for t in p.transfers] == ["changed"]


def test_previous_manifest_vouches_for_an_etag_that_is_not_the_md5():
    # KMS-encrypted objects and server-side copies carry ETags that cannot be recomputed locally.
    before = previous(FileEntry("a.py", 10, "kms-etag", MD5, "v1"))
    p = plan_push([local("a.py")], [obj("a.py", etag="kms-etag")], FOLDER, before)
    assert p.transfers == () and p.unchanged == (FileEntry("a.py", 10, "kms-etag", MD5, "v1"),)
    # The same ETag recorded for other bytes proves nothing.
    p = plan_push([local("a.py", md5=OTHER)], [obj("a.py", etag="kms-etag")], FOLDER, before)
    assert [t.file.path for t in p.transfers] == ["a.py"]


def test_version_id_is_carried_over_only_for_the_same_etag():
    before = previous(FileEntry("a.py", 10, MD5, MD5, "v1"), FileEntry("b.py", 10, OTHER, OTHER, "v2"))
    p = plan_push([local("a.py"), local("b.py")], [obj("a.py"), obj("b.py")], FOLDER, before)
    assert {e.path: e.version_id for e in p.unchanged} == {"a.py": "v1", "b.py": None}


def test_stale_objects_are_deleted_but_only_below_the_folder():
    listing = [obj("keep.py"), obj("gone.py"), obj("sub/"), obj("odd//key"),
               RemoteObject("dags/repo-old/x.py", MD5, 10, 0), RemoteObject("dags/.objsync/manifests/repo.json", MD5, 1, 0)]
    p = plan_push([local("keep.py")], listing, FOLDER)
    assert p.deletes == ("dags/repo/gone.py", "dags/repo/odd//key", "dags/repo/sub/")
    assert p.listed == 4


def test_folder_must_end_with_a_slash():
    with pytest.raises(ValueError, match="must end in '/'"):
        plan_push([local("a.py")], [], "dags/repo")


def test_empty_source_is_refused_unless_allowed():
    listing = [obj("a.py"), obj("b.py")]
    p = plan_push([], listing, FOLDER)
    assert "--allow-empty" in p.blocked and "2 objects" in p.blocked
    p = plan_push([], listing, FOLDER, rules=PushRules(allow_empty=True))
    assert p.blocked is None and p.deletes == ("dags/repo/a.py", "dags/repo/b.py")
    assert "--allow-empty" in plan_push([], [], FOLDER).blocked


@pytest.mark.parametrize("spec, blocked", [("2", True), ("3", False), ("50%", True), ("75%", False), (None, False)])
def test_max_delete(spec, blocked):
    listing = [obj(f"f{i}.py") for i in range(4)]
    p = plan_push([local("f0.py")], listing, FOLDER, rules=PushRules(max_delete=spec))
    assert len(p.deletes) == 3
    assert (p.blocked is not None) == blocked
    if blocked:
        assert f"--max-delete {spec}" in p.blocked

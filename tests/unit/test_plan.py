from objsync.localfs import LocalFile
from objsync.paths import Filter
from objsync.plan import Rules, max_delete_count, plan
from objsync.remote import RemoteObject
from objsync.state import Entry

MD5 = "0123456789abcdef0123456789abcdef"
MULTI = "0123456789abcdef0123456789abcdef-3"


def obj(key, etag=MD5, size=10, mtime=1_000):
    return RemoteObject(key, etag, size, mtime)


def entry(etag=MD5, size=10, mtime=5):
    return Entry(etag, size, mtime, "h" * 32)


def test_new_files_are_fetched_and_siblings_of_the_prefix_ignored():
    p = plan([obj("p/a.py"), obj("p/d/b.py")], "p", {}, {})
    assert [(f.rel, f.reason) for f in p.fetches] == [("a.py", "new"), ("d/b.py", "new")]
    assert not p.rejected and not p.deletes


def test_up_to_date_is_skipped_from_stat_alone():
    p = plan([obj("a.py")], "", {"a.py": entry()}, {"a.py": LocalFile(10, 5)})
    assert p.fetches == () and p.skipped == {"up to date": 1}


def test_changed_in_bucket():
    p = plan([obj("a.py", etag="f" * 32)], "", {"a.py": entry()}, {"a.py": LocalFile(10, 5)})
    (f,) = p.fetches
    assert f.reason == "changed in bucket" and f.verify == "md5"


def test_changed_in_bucket_with_new_size_skips_verification():
    p = plan([obj("a.py", etag="f" * 32, size=11)], "", {"a.py": entry()}, {"a.py": LocalFile(10, 5)})
    assert p.fetches[0].verify is None


def test_local_touch_is_verified_by_xxh3_not_downloaded_blindly():
    p = plan([obj("a.py")], "", {"a.py": entry()}, {"a.py": LocalFile(10, 6)})
    (f,) = p.fetches
    assert (f.reason, f.verify, f.expect) == ("changed locally", "xxh3", "h" * 32)


def test_local_truncation_is_restored():
    p = plan([obj("a.py")], "", {"a.py": entry()}, {"a.py": LocalFile(3, 6)})
    (f,) = p.fetches
    assert (f.reason, f.verify) == ("changed locally", None)


def test_local_removal_is_restored():
    p = plan([obj("a.py")], "", {"a.py": entry()}, {})
    assert p.fetches[0].reason == "missing locally"


def test_adoption_without_cache_uses_md5_or_multipart():
    local = {"a.py": LocalFile(10, 1), "b.bin": LocalFile(10, 1), "c": LocalFile(10, 1)}
    p = plan([obj("a.py"), obj("b.bin", etag=MULTI), obj("c", etag="weird")], "", {}, local)
    assert {f.rel: f.verify for f in p.fetches} == {"a.py": "md5", "b.bin": "multipart", "c": None}


def test_multipart_etag_in_cache_is_not_refetched():
    p = plan([obj("big", etag=MULTI)], "", {"big": entry(etag=MULTI)}, {"big": LocalFile(10, 5)})
    assert p.fetches == ()


def test_scratch_refetches_everything():
    p = plan([obj("a.py")], "", {"a.py": entry()}, {"a.py": LocalFile(10, 5)}, Rules(scratch=True))
    assert [f.reason for f in p.fetches] == ["scratch"]


def test_deletes_spare_excluded_and_state_folder():
    local = {"gone.py": LocalFile(1, 1), "keep/x.pyc": LocalFile(1, 1), "a.py": LocalFile(10, 5)}
    rules = Rules(filter=Filter(excludes=("keep/**",)))
    p = plan([obj("a.py")], "", {"a.py": entry()}, local, rules)
    assert p.deletes == ("gone.py",)


def test_excluded_remote_keys_are_not_fetched():
    p = plan([obj("a.py"), obj("tmp/x")], "", {}, {}, Rules(filter=Filter(excludes=("tmp/**",))))
    assert [f.rel for f in p.fetches] == ["a.py"] and p.skipped == {"excluded": 1}


def test_folder_markers_and_metadata_are_skipped_silently():
    p = plan([obj("p/"), obj("p/d/"), obj("p/.objsync/manifests/r.json"), obj("p/a")], "p/", {}, {})
    assert [f.rel for f in p.fetches] == ["a"] and not p.rejected
    assert p.skipped == {"folder marker": 2, "objsync metadata": 1}


def test_unsafe_keys_are_rejected_and_rest_syncs():
    keys = ["../evil", "a/../../evil", "/abs", "a//b", "ctl\x01", "back\\slash", "x" * 300, "ok.py"]
    p = plan([obj(k) for k in keys], "", {}, {})
    assert [f.rel for f in p.fetches] == ["ok.py"]
    assert sorted(r.key for r in p.rejected) == sorted(keys[:-1])


def test_file_and_folder_conflict_rejects_the_file_in_both_orders():
    for order in (["a", "a/b"], ["a/b", "a"]):
        p = plan([obj(k) for k in order], "", {}, {})
        assert [f.rel for f in p.fetches] == ["a/b"]
        assert [r.key for r in p.rejected] == ["a"] and "file and a folder" in p.rejected[0].reason


def test_conflict_keeps_the_folder_form_consistently():
    # The folder wins: a stale local file 'a' moves aside so that 'a/b' can be written.
    p = plan([obj("a"), obj("a/b")], "", {}, {"a": LocalFile(10, 1)})
    assert [f.rel for f in p.fetches] == ["a/b"] and p.displaced == ("a",)
    assert [r.key for r in p.rejected] == ["a"]


def test_unicode_normalization_twins_keep_the_nfc_form():
    nfc, nfd = "caf\u00e9.py", "cafe\u0301.py"
    p = plan([obj(nfd), obj(nfc)], "", {}, {})
    assert [f.rel for f in p.fetches] == [nfc]
    assert [r.key for r in p.rejected] == [nfd]


def test_empty_listing_never_wipes_the_folder():
    p = plan([], "p", {}, {"a.py": LocalFile(1, 1)})
    assert p.deletes == () and "listing is empty" in p.delete_blocked
    assert plan([], "p", {}, {"a.py": LocalFile(1, 1)}, Rules(allow_empty=True)).deletes == ("a.py",)


def test_max_delete_holds_back_all_deletes():
    local = {f"f{i}": LocalFile(1, 1) for i in range(10)} | {"a.py": LocalFile(10, 5)}
    p = plan([obj("a.py")], "", {"a.py": entry()}, local, Rules(max_delete="5"))
    assert p.deletes == () and "exceed --max-delete" in p.delete_blocked
    assert len(plan([obj("a.py")], "", {"a.py": entry()}, local, Rules(max_delete="95%")).deletes) == 10


def test_max_delete_count():
    assert max_delete_count("10%", 55) == 5
    assert max_delete_count("7", 55) == 7
    assert max_delete_count(None, 55) is None


def test_file_replacing_a_folder_displaces_the_folder_contents():
    local = {"a/old1": LocalFile(1, 1), "a/sub/old2": LocalFile(1, 1), "z": LocalFile(1, 1)}
    p = plan([obj("a"), obj("z")], "", {}, local)
    assert [f.rel for f in p.fetches if f.rel == "a"] == ["a"]
    assert p.displaced == ("a/old1", "a/sub/old2") and p.deletes == ()


def test_folder_replacing_a_file_displaces_the_file():
    p = plan([obj("a/b")], "", {}, {"a": LocalFile(1, 1)})
    assert p.displaced == ("a",) and [f.rel for f in p.fetches] == ["a/b"]


def test_excluded_local_file_in_the_way_blocks_only_that_fetch():
    rules = Rules(filter=Filter(excludes=("a/keep",)))
    p = plan([obj("a"), obj("b")], "", {}, {"a/keep": LocalFile(1, 1)}, rules)
    assert [f.rel for f in p.fetches] == ["b"]
    assert p.rejected[0].key == "a" and "in the way" in p.rejected[0].reason

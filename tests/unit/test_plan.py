from objsync.deletecap import default_max_delete, max_delete_count
from objsync.model import Entry, LocalFile, RemoteObject
from objsync.paths import Filter
from objsync.pull.decide import Rules
from objsync.pull.plan import plan

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


def test_folder_markers_are_skipped_and_objsync_keys_not_even_counted():
    p = plan([obj("p/"), obj("p/d/"), obj("p/.objsync/manifests/r.json"), obj("p/a")], "p/", {}, {})
    assert [f.rel for f in p.fetches] == ["a"] and not p.rejected
    assert p.skipped == {"folder marker": 2} and p.listed == 3


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


def test_max_delete_count_rounds_percentages_up():
    assert max_delete_count("10%", 55) == 6
    assert max_delete_count("10%", 70) == 7  # exact, not 8 from binary float error
    assert max_delete_count("50%", 1) == 1
    assert max_delete_count("0%", 55) == 0
    assert max_delete_count("7", 55) == 7
    assert max_delete_count(None, 55) is None


def test_default_max_delete_is_half_the_folder_but_at_least_ten_files():
    assert [default_max_delete(n) for n in (0, 3, 20, 21, 1000)] == [10, 10, 10, 11, 500]


def local_files(n):
    return {f"old/f{i}": LocalFile(1, 1) for i in range(n)}


def test_default_cap_lets_one_repo_of_several_go_and_holds_a_wrong_prefix():
    repos = {f"r{r}/f{i}": LocalFile(1, 1) for r in range(4) for i in range(25)}
    keep = [obj(f"r{r}/f{i}", size=1) for r in range(1, 4) for i in range(25)]
    state = {rel: Entry(MD5, 1, 1, "h") for rel in repos}
    p = plan(keep, "", state, repos)
    assert len(p.deletes) == 25 and p.delete_blocked is None
    # The same files under another prefix: every local path would go.
    moved = [obj(f"dags/{o.key}", size=1) for o in keep]
    p = plan(moved, "", state, repos)
    assert p.deletes == () and "default --max-delete" in p.delete_blocked and "50 of 100" in p.delete_blocked
    assert len(plan(moved, "", state, repos, Rules(max_delete="100%")).deletes) == 100


def test_default_cap_allows_small_folders_to_change_completely():
    p = plan([obj("new.py")], "", {}, local_files(10))
    assert len(p.deletes) == 10 and p.delete_blocked is None
    assert plan([obj("new.py")], "", {}, local_files(11)).delete_blocked is not None


def test_allow_empty_is_not_held_back_by_the_default_cap_but_by_an_explicit_one():
    assert len(plan([], "", {}, local_files(100), Rules(allow_empty=True)).deletes) == 100
    p = plan([], "", {}, local_files(100), Rules(allow_empty=True, max_delete="10"))
    assert p.deletes == () and "--max-delete 10" in p.delete_blocked


def test_key_listed_twice_identically_is_harmless():
    p = plan([obj("a.py"), obj("a.py")], "", {}, {})
    assert [f.rel for f in p.fetches] == ["a.py"] and not p.rejected
    assert p.skipped == {"listed twice": 1}


def test_key_listed_twice_differently_is_rejected_and_the_local_file_kept():
    p = plan([obj("a.py"), obj("a.py", etag="f" * 32)], "", {}, {"a.py": LocalFile(10, 1)})
    assert p.fetches == () and p.deletes == ()
    assert [r.key for r in p.rejected] == ["a.py"] and "listed twice" in p.rejected[0].reason


def test_hostile_names_inside_objsync_metadata_are_still_named():
    p = plan([obj("p/.objsync/../../x"), obj("p/.objsync/ok.json"), obj("p/.objsync")], "p", {}, {})
    assert [r.key for r in p.rejected] == ["p/.objsync/../../x"]
    assert p.skipped == {} and p.listed == 1


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

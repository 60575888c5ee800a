"""The check that lets an unchanged listing skip the plan: local files against the cache, each streamed in its order."""

from objsync.model import Entry, LocalFile
from objsync.pull.listing import matches_cache

CACHED = {f"d/f{i}.py": Entry("e", i, 1_000 + i, "h") for i in range(50)}
LOCAL = {rel: LocalFile(e.size, e.mtime_ns) for rel, e in CACHED.items()}


def check(cached=CACHED, local=LOCAL, selects=lambda rel: True) -> bool:
    return matches_cache(iter(cached.items()), reversed(list(local.items())), selects)


def test_the_same_files_in_another_order_match():
    assert check()
    assert check(cached={}, local={})


def test_any_difference_in_name_size_mtime_or_kind_is_seen():
    assert not check(local=LOCAL | {"d/f3.py": LocalFile(3, 1)})  # touched
    assert not check(local=LOCAL | {"d/f3.py": LocalFile(4, 1_003)})  # grew
    assert not check(local=LOCAL | {"d/f3.py": LocalFile(3, 1_003, is_link=True)})
    assert not check(local={k: v for k, v in LOCAL.items() if k != "d/f7.py"})  # gone
    assert not check(local=LOCAL | {"d/new.py": LocalFile(1, 1)})  # not ours
    # Two files that swapped their sizes and times keep the totals, but not the digest.
    swapped = LOCAL | {"d/f1.py": LocalFile(2, 1_002), "d/f2.py": LocalFile(1, 1_001)}
    assert not check(local=swapped)


def test_only_selected_files_count_on_either_side():
    selects = lambda rel: not rel.endswith("9.py")  # noqa: E731
    extra = LOCAL | {"d/f9.py": LocalFile(0, 0), "d/x9.py": LocalFile(1, 1)}
    assert check(local=extra, selects=selects) and not check(local=extra)
    assert check(cached=CACHED | {"old9.py": Entry("e", 1, 1, "h")}, selects=selects)


def test_a_local_name_that_is_not_utf_8_is_compared_not_raised():
    odd = "d/caf\udce9.py"  # a byte that os.fsdecode could not decode
    assert not check(local=LOCAL | {odd: LocalFile(1, 1)})

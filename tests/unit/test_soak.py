"""The soak test's pure pieces: judging a read, visibility, percentiles, growth and leftovers."""

import os

import pytest

from objsync.bench.soak import (Sample, at_a_swap, file_gens, folder_files, growth, judge, leftovers, near_a_kill,
                                percentile, render, visibility)
from objsync.bench.soak_reader import read_forked

MIB = 1 << 20


def test_a_read_is_ok_only_when_both_files_are_whole_and_of_one_generation():
    assert judge({"dag": [3, 3], "helper": [3, 3]}) == ("ok", 3)
    assert judge({"dag": [4, 4], "helper": [3, 3]}) == ("mixed", None)
    assert judge({"dag": [3, None], "helper": [3, 3]}) == ("partial", None)  # cut before GEN_END
    assert judge({"dag": [3, 3], "helper": [3, 4]}) == ("partial", None)
    assert judge({"error": "SyntaxError: unterminated triple-quoted string literal"}) == ("partial", None)
    assert judge({}) == ("partial", None)


def test_every_file_of_a_generation_carries_it_at_both_ends():
    files = render("alpha", 12)
    assert file_gens(files["dag.py"]) == file_gens(files["alpha_helper.py"]) == [12, 12]
    cut = files["alpha_helper.py"][: len(files["alpha_helper.py"]) // 2]
    assert file_gens(cut) == [12, None]
    assert render("alpha", 13)["sql/static.sql"] == files["sql/static.sql"]


def _tree(root, name, files):
    for rel, data in files.items():
        path = root / ".objsync/snapshots/alpha" / name / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


@pytest.mark.parametrize("style", ["per-file", "resolved"])
def test_the_reader_sees_a_mixed_tree_and_a_cut_file(tmp_path, style):
    _tree(tmp_path, "t1", render("alpha", 1))
    os.symlink(".objsync/snapshots/alpha/t1", tmp_path / "alpha")
    assert judge(read_forked(str(tmp_path), "alpha", style)) == ("ok", 1)
    helper = tmp_path / ".objsync/snapshots/alpha/t1/alpha_helper.py"
    helper.write_bytes(render("alpha", 2)["alpha_helper.py"])
    assert judge(read_forked(str(tmp_path), "alpha", style)) == ("mixed", None)
    helper.write_bytes(render("alpha", 1)["alpha_helper.py"][:500])
    assert judge(read_forked(str(tmp_path), "alpha", style)) == ("partial", None)
    assert not list(tmp_path.rglob("__pycache__"))  # a reader never writes into the trees


def test_visibility_counts_a_later_generation_as_showing_an_earlier_push():
    pushes = [(2, 10.0), (3, 12.0), (4, 14.0), (5, 16.0)]
    shown = [(9.0, 1), (10.5, 2), (14.25, 4)]  # 3 was overtaken by 4 before the daemon saw it
    *lags, never = visibility(pushes, shown)
    assert lags == pytest.approx([0.5, 2.25, 0.25]) and never is None


def test_percentile_interpolates_between_ranks():
    assert percentile([], 0.5) is None
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert percentile([1.0, 2.0], 0.5) == 1.5
    assert percentile(list(range(101)), 0.99) == pytest.approx(99.0)


def test_growth_compares_the_first_and_last_samples_past_warm_up_and_each_life():
    samples = [Sample(t, 1, t, 100 * MIB if t < 5 else 60 * MIB, 20) for t in range(40)]
    samples += [Sample(40 + t, 2, t, 60 * MIB + (3 * MIB if t > 25 else 0), 21) for t in range(40)]
    rss = growth(samples, "rss", warmup=10, k=5)
    assert (rss.warm, rss.end, rss.growth) == (60 * MIB, 63 * MIB, 3 * MIB)  # the start-up peak is left out
    assert rss.worst_life == 3 * MIB and rss.lives == 2
    fds = growth(samples, "fds", warmup=10, k=5)
    assert (fds.growth, fds.worst_life) == (1, 0)
    assert growth(samples[:12], "rss", warmup=10, k=5) is None


def test_leftovers_allow_the_current_tree_and_recently_retired_ones(tmp_path):
    for name in ("new", "old", "older", ".building-x"):
        _tree(tmp_path, name, {"dag.py": b"x"})
    store = tmp_path / ".objsync/snapshots/alpha"
    os.symlink(".objsync/snapshots/alpha/new", tmp_path / "alpha")
    (store / "old.retired").touch()
    (store / "older.retired").touch()
    os.utime(store / "older.retired", (1_000, 1_000))
    (tmp_path / ".objsync/tmp").mkdir()
    (tmp_path / ".objsync/tmp/abc.part").touch()
    left = leftovers(tmp_path, keep=60, now=os.stat(store / "old.retired").st_mtime + 1)
    assert left.current == {"alpha": "new"} and left.recent == {"alpha": ["old"]}
    assert left.stale == {"alpha": [".building-x", "older"]} and left.tmp == ["abc.part"] and left.bad == 3
    assert folder_files(tmp_path) == {"alpha/dag.py": b"x"}


def test_a_mixed_read_is_explained_only_by_two_trees_shown_one_after_the_other():
    shown = [1, 2, 4, 5]
    assert at_a_swap({"dag": [4, 4], "helper": [5, 5]}, shown)
    assert not at_a_swap({"dag": [5, 5], "helper": [4, 4]}, shown)  # the helper older than the DAG
    assert not at_a_swap({"dag": [2, 2], "helper": [5, 5]}, shown)  # trees apart
    assert not at_a_swap({"dag": [2, 2], "helper": [3, 3]}, shown)  # a tree never shown
    assert not at_a_swap({"dag": [4, 4], "helper": [4, 4]}, shown)  # not mixed at all


def test_a_push_is_near_a_kill_when_the_daemon_died_while_it_waited_or_just_before():
    assert near_a_kill(done=100.0, lag=3.0, kills=[102.0])
    assert near_a_kill(done=100.0, lag=0.5, kills=[96.0])  # the daemon was still starting
    assert not near_a_kill(done=100.0, lag=0.5, kills=[90.0, 101.0])

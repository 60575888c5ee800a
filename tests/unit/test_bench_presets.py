"""Synthetic trees: reproducible from the seed, with the promised layout and size distribution."""

import dataclasses
import math
import statistics

import pytest

from objsync.bench.presets import MIB, PRESETS, apply, body, build_tree, expectations, mutate

LARGE = PRESETS["large"]


@pytest.fixture(scope="module")
def large_tree():
    return build_tree(LARGE, seed=7)


def test_same_seed_same_tree_and_bytes(large_tree):
    again = build_tree(LARGE, seed=7)
    assert again == large_tree
    sample = large_tree[::997]
    assert [body(f, 7) for f in sample] == [body(f, 7) for f in again[::997]]


def test_another_seed_gives_another_tree():
    a, b = build_tree(PRESETS["small"], 1), build_tree(PRESETS["small"], 2)
    assert [f.rel for f in a] != [f.rel for f in b]
    assert body(a[0], 1) != body(a[0], 2)


def test_large_preset_counts_and_big_files(large_tree):
    assert len(large_tree) == 10_008
    big = [f for f in large_tree if f.size > LARGE.max_size]
    assert len(big) == 8 and all(f.size == 16 * MIB for f in big)
    assert len({f.rel for f in large_tree}) == len(large_tree)


def test_sizes_are_log_normal_within_bounds(large_tree):
    sizes = [f.size for f in large_tree if f.size <= LARGE.max_size]
    assert min(sizes) >= 205 and max(sizes) <= 60 * 1024
    logs = [math.log(s) for s in sizes]
    assert abs(statistics.median(logs) - LARGE.mu) < 0.05
    within_one_sigma = sum(abs(x - LARGE.mu) <= LARGE.sigma for x in logs) / len(logs)
    assert 0.65 < within_one_sigma < 0.71  # 68 % for a normal distribution in log space
    assert abs(statistics.stdev(logs) - LARGE.sigma) < 0.05


def test_layout_is_nested_repos_of_mostly_python(large_tree):
    small = [f for f in large_tree if f.size <= LARGE.max_size]
    assert len({f.rel.split("/")[0] for f in small}) == 20
    assert sum(f.rel.endswith(".py") for f in small) / len(small) > 0.75
    assert max(f.rel.count("/") for f in small) >= 5


def test_bodies_have_the_listed_size_and_are_printable(large_tree):
    for f in large_tree[:50]:
        data = body(f, 7)
        assert len(data) == f.size
        assert all(32 <= b < 127 or b == 10 for b in data)


def test_without_large_files():
    p = LARGE.without_large_files()
    assert p.name == "large-small-only" and len(build_tree(p, 1)) == 10_000


def test_mutation_shares_are_disjoint_and_reproducible(large_tree):
    m = mutate(large_tree, LARGE, 7)
    assert (len(m.overwritten), len(m.added), len(m.deleted)) == (100, 50, 50)
    assert m == mutate(large_tree, LARGE, 7)
    before = {f.rel: f for f in large_tree}
    assert not {f.rel for f in m.overwritten} & set(m.deleted)
    assert all(f.rel not in before for f in m.added)
    assert all(f.size != before[f.rel].size and f.version == 1 for f in m.overwritten)


def test_apply_gives_the_edited_tree(large_tree):
    m = mutate(large_tree, LARGE, 7)
    after = {f.rel: f for f in apply(large_tree, m)}
    assert len(after) == len(large_tree) + 50 - 50
    assert not set(m.deleted) & after.keys()
    changed = m.overwritten[0]
    model = expectations([after[changed.rel]], 7)
    old = expectations([f for f in large_tree if f.rel == changed.rel], 7)
    assert model[changed.rel] != old[changed.rel]


def test_tiny_preset_still_edits_something():
    tree = build_tree(PRESETS["tiny"], 1)
    m = mutate(tree, PRESETS["tiny"], 1)
    assert len(tree) == 50 and len(m.overwritten) == len(m.added) == len(m.deleted) == 1


def test_the_dag_presets_are_the_small_files_of_large_and_xlarge(large_tree):
    assert build_tree(PRESETS["dags10k"], seed=7) == large_tree[:10_000]
    assert (PRESETS["dags100k"].files, PRESETS["dags100k"].large_files) == (100_000, 0)
    assert PRESETS["dags100k"] == dataclasses.replace(PRESETS["xlarge"].without_large_files(), name="dags100k")

"""The streaming planner against the whole-map reference, on random small trees full of clashes."""

from __future__ import annotations

import random

import pytest
from support.reference_plan import plan as reference

from objsync.model import Entry, LocalFile, RemoteObject
from objsync.paths import Filter
from objsync.pull.decide import Rules
from objsync.pull.plan import March, Unsorted, plan

# Names chosen to sit on either side of "/" in code-point order, and Unicode look-alikes.
NAMES = ["a", "a-b", "a.py", "a0", "b", "caf\u00e9", "cafe\u0301", ".objsync", "x/"]
ETAGS = ["d41d8cd98f00b204e9800998ecf8427e", "0cc175b9c0f1b6a831c399e269772661", "abc-2"]


def random_path(rng: random.Random) -> str:
    return "/".join(rng.choice(NAMES[:-1]) for _ in range(rng.randint(1, 3))) + rng.choice(["", "", "/"])


def case(seed: int):
    rng = random.Random(seed)
    listing = [RemoteObject("p/" + random_path(rng), rng.choice(ETAGS), rng.randint(0, 2), 1)
               for _ in range(rng.randint(0, 14))]
    listing += rng.sample(listing, min(len(listing), rng.randint(0, 2)))  # listed twice, the same
    if listing and rng.random() < 0.3:
        twin = rng.choice(listing)
        listing.append(RemoteObject(twin.key, twin.etag, twin.size + 1, 1))  # listed twice, differently
    local, state = {}, {}
    for _ in range(rng.randint(0, 10)):
        rel = random_path(rng).rstrip("/")
        if not any(rel.startswith(other + "/") or other.startswith(rel + "/") for other in local):
            local[rel] = LocalFile(rng.randint(0, 2), rng.choice([1, 2]), rng.random() < 0.1)
    for obj in rng.sample(listing, len(listing) // 2):
        state[obj.key[2:]] = Entry(rng.choice([obj.etag, ETAGS[0]]), obj.size, rng.choice([1, 2]), "h")
    rules = Rules(filter=Filter(excludes=tuple(rng.sample(["b", "**/a0", "a/a.py"], rng.randint(0, 2)))),
                  max_delete=rng.choice([None, None, "2", "100%"]), allow_empty=rng.random() < 0.5)
    held = frozenset(rng.sample(["a", "b"], rng.randint(0, 1)))
    return sorted(listing, key=lambda o: o.key), state, local, rules, held


@pytest.mark.parametrize("seed", range(400))
def test_the_streaming_planner_decides_as_the_reference(seed):
    listing, state, local, rules, held = case(seed)
    got = plan(listing, "p", state, local, rules, held)
    want = reference(listing, "p", state, dict(sorted(local.items())), rules, held)  # names the first path in the way
    assert sorted(got.fetches, key=lambda f: f.rel) == sorted(want.fetches, key=lambda f: f.rel)
    assert (got.deletes, got.displaced, got.delete_blocked) == (want.deletes, want.displaced, want.delete_blocked)
    assert sorted(got.rejected, key=repr) == sorted(want.rejected, key=repr)
    assert (got.skipped, got.listed) == (want.skipped, want.listed)


def test_a_listing_out_of_order_is_refused_not_planned():
    march = March("", lambda rels: {})
    with pytest.raises(Unsorted, match="'a' after 'b'"):
        list(march.run([RemoteObject("b", "e", 1, 1), RemoteObject("a", "e", 1, 1)], []))
    with pytest.raises(Unsorted, match="local files"):
        list(March("", lambda rels: {}).run([], [("b", LocalFile(1, 1)), ("a", LocalFile(1, 1))]))


def test_fetches_stream_out_before_the_listing_ends_and_the_cache_is_asked_a_page_at_a_time():
    asked: list[int] = []
    march = March("", lambda rels: asked.append(len(rels)) or {})
    listing = (RemoteObject(f"d/{i:05}.py", ETAGS[0], 1, 1) for i in range(2500))
    fetches = march.run(listing, [])
    first = next(fetches)
    assert first.rel == "d/00000.py" and asked == [1000] and march.plan is None
    assert len(list(fetches)) == 2499 and asked == [1000, 1000, 500]
    assert march.plan.listed == 2500 and march.plan.fetches == ()

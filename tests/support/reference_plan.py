"""A planner that holds whole maps of the listing and the local files: slow, plain to read, and the
reference that the streaming planner (objsync/pull/plan.py) is checked against."""

from __future__ import annotations

from collections import Counter
from typing import Iterable, Mapping

from objsync.model import Entry, Fetch, LocalFile, Plan, Rejected, RemoteObject
from objsync.paths import (
    UnsafeKey,
    check_relative,
    conflicts,
    is_dir_marker,
    is_reserved,
    normalize_prefix,
    parents,
)
from objsync.pull.decide import Rules, decide, delete_guard


def plan(listing: Iterable[RemoteObject], prefix: str, state: Mapping[str, Entry],
         local: Mapping[str, LocalFile], rules: Rules = Rules(), held: frozenset[str] = frozenset()) -> Plan:
    """Decide every fetch, delete and skip of a pass; no I/O.

    `held` names top-level folders whose new version could not be read: they are neither changed nor deleted.
    """
    prefix = normalize_prefix(prefix)
    skipped: Counter[str] = Counter()
    rejected: list[Rejected] = []
    remote: dict[str, RemoteObject] = {}
    twice: dict[str, RemoteObject] = {}
    listed = own = 0
    for obj in listing:
        listed += 1
        if is_dir_marker(obj.key):
            skipped["folder marker"] += 1
            continue
        if not obj.key.startswith(prefix):
            rejected.append(Rejected(obj.key, f"key is outside the prefix {prefix!r}"))
            continue
        rel = obj.key[len(prefix):]
        try:
            if is_reserved(rel):
                # `objsync push` keeps manifests here: never mirrored, but a hostile name is still named.
                inner = rel.partition("/")[2]
                if inner:
                    check_relative(inner)
                own += 1  # never a candidate for the folder, so neither listed nor skipped
                continue
            check_relative(rel)
        except UnsafeKey as exc:
            rejected.append(Rejected(obj.key, str(exc)))
            continue
        first = remote.get(rel)
        if first is None:
            remote[rel] = obj
        elif (first.etag, first.size) == (obj.etag, obj.size):
            skipped["listed twice"] += 1  # overlapping pages of one listing: harmless
        else:
            twice[rel] = obj

    known = set(remote)  # every safely mapped key, selected or not: never deleted locally
    for rel, obj in twice.items():
        # Two answers for one name: neither can be trusted, and the local file stays as it is.
        remote.pop(rel, None)
        rejected.append(Rejected(obj.key, "listed twice with different ETags or sizes; the local file was kept"))
    mapped = dict(remote)  # a look-alike may name a key that is itself rejected as a file and a folder
    for rel, c in conflicts(remote).items():
        other = mapped[c.other].key
        reason = (f"differs from {other!r} only in Unicode normalization" if c.unicode
                  else f"is both a file and a folder (another key is {other!r})")
        rejected.append(Rejected(remote.pop(rel).key, reason))
        known.discard(rel)

    fetches: list[Fetch] = []
    for rel, obj in remote.items():
        if held and rel.partition("/")[0] in held:
            skipped["held"] += 1
            continue
        if not rules.filter.selects(rel):
            skipped["excluded"] += 1
            continue
        fetch = decide(rel, obj, state.get(rel), local.get(rel), rules.scratch)
        if fetch is None:
            skipped["up to date"] += 1
        else:
            fetches.append(fetch)

    deletes = sorted(rel for rel in local if rel not in known and not is_reserved(rel)
                     and rules.filter.selects(rel) and not (held and rel.partition("/")[0] in held))
    fetches, displaced, blocked = _clear_the_way(fetches, deletes, local)
    rejected.extend(blocked)
    displaced_set = set(displaced)
    deletes = [rel for rel in deletes if rel not in displaced_set]
    why = delete_guard(len(deletes) + len(displaced), len(known), len(local), rules)
    if why:
        # Nothing may be deleted, including files that fetches would have pushed aside.
        held = [f for f in fetches if _needs(f, displaced_set)]
        rejected.extend(Rejected(f.key, "a local path in the way would need deleting, and deletes "
                                        "are held back this pass") for f in held)
        fetches = [f for f in fetches if not _needs(f, displaced_set)]
        displaced, deletes = [], []
    return Plan(listed - own, tuple(fetches), tuple(deletes), tuple(displaced), tuple(rejected),
                dict(skipped), why)


def _clear_the_way(fetches: list[Fetch], deletes: list[str], local: Mapping[str, LocalFile]):
    """Find local files that stand where a fetch must go: ones due for deletion move aside first."""
    if not fetches:
        return fetches, [], []
    deletable = set(deletes)
    local_dirs = {p for rel in local for p in parents(rel)}
    kept: list[Fetch] = []
    displaced: set[str] = set()
    blocked: list[Rejected] = []
    for f in fetches:
        in_way = [p for p in parents(f.rel) if p in local]
        if f.rel in local_dirs:
            in_way += [rel for rel in local if rel.startswith(f.rel + "/")]
        stuck = [p for p in in_way if p not in deletable]
        if stuck:
            blocked.append(Rejected(f.key, f"the local path {stuck[0]!r} is in the way and is not "
                                           f"ours to remove (excluded or kept)"))
            continue
        displaced.update(in_way)
        kept.append(f)
    return kept, sorted(displaced), blocked


def _needs(fetch: Fetch, displaced: set[str]) -> bool:
    return any(p in displaced for p in parents(fetch.rel)) or any(
        d.startswith(fetch.rel + "/") for d in displaced)

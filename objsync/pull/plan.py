"""The planner: a pure function from (listing, cache, local files) to what a pass must do."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from objsync.deletecap import DEFAULT_DELETE_FLOOR, DEFAULT_MAX_DELETE, default_max_delete, max_delete_count
from objsync.model import Entry, Fetch, LocalFile, Plan, Rejected, RemoteObject, Verify
from objsync.paths import (
    Filter,
    UnsafeKey,
    check_relative,
    conflicts,
    is_dir_marker,
    is_reserved,
    normalize_prefix,
    parents,
)
from objsync.s3.etag import is_md5_etag, multipart_parts


@dataclass(frozen=True)
class Rules:
    """The user's policy for a pass."""

    filter: Filter = field(default_factory=Filter)
    scratch: bool = False
    allow_empty: bool = False
    max_delete: str | None = None  # "N" files or "P%" of the local files; None for the default cap


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
    for rel, c in conflicts(remote).items():
        other = remote[c.other].key
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
        fetch = _decide(rel, obj, state.get(rel), local.get(rel), rules.scratch)
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
    why = _delete_guard(len(deletes) + len(displaced), len(known), len(local), rules)
    if why:
        # Nothing may be deleted, including files that fetches would have pushed aside.
        held = [f for f in fetches if _needs(f, displaced_set)]
        rejected.extend(Rejected(f.key, "a local path in the way would need deleting, and deletes "
                                        "are held back this pass") for f in held)
        fetches = [f for f in fetches if not _needs(f, displaced_set)]
        displaced, deletes = [], []
    return Plan(listed - own, tuple(fetches), tuple(deletes), tuple(displaced), tuple(rejected),
                dict(skipped), why)


def _decide(rel: str, obj: RemoteObject, entry: Entry | None, lf: LocalFile | None,
            scratch: bool) -> Fetch | None:
    def fetch(reason: str, verify: Verify | None = None, expect: str = "") -> Fetch:
        return Fetch(obj.key, rel, obj.etag, obj.size, obj.mtime_ns, reason, verify, expect, obj.version_id, obj.md5,
                     obj.sha256, obj.pack)

    if scratch:
        return fetch("scratch")
    if lf is None:
        return fetch("new" if entry is None else "missing locally")
    if lf.is_link:
        return fetch("a symlink is in the way")
    if entry is not None and entry.etag == obj.etag and entry.size == obj.size:
        if lf.size == entry.size and lf.mtime_ns == entry.mtime_ns:
            return None
        if lf.size == entry.size:
            # Touched but maybe not changed: hashing the local file is cheaper than a download.
            return fetch("changed locally", Verify.XXH3, entry.xxh3)
        return fetch("changed locally")
    reason = "changed in bucket" if entry is not None else "not in cache"
    if lf.size != obj.size:
        return fetch(reason)
    if is_md5_etag(obj.etag):
        return fetch(reason, Verify.MD5)
    if multipart_parts(obj.etag):
        return fetch(reason, Verify.MULTIPART)
    return fetch(reason)


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


def _delete_guard(n_delete: int, n_remote: int, n_local: int, rules: Rules) -> str | None:
    if not n_delete:
        return None
    if n_remote == 0 and not rules.allow_empty:
        return (f"the listing is empty but {n_local} local files exist, so nothing was deleted; "
                f"check the prefix and permissions, or pass --allow-empty if the prefix was emptied on purpose")
    if rules.max_delete is None:
        if n_remote == 0:
            return None  # --allow-empty already says that every local file may go
        cap = default_max_delete(n_local)
    else:
        cap = max_delete_count(rules.max_delete, n_local)
    if n_delete <= cap:
        return None
    if rules.max_delete is None:
        return (f"{n_delete} deletes exceed the default --max-delete ({DEFAULT_MAX_DELETE} of the local files, "
                f"at least {DEFAULT_DELETE_FLOOR}: {cap} of {n_local}), so nothing was deleted; check the prefix, "
                f"or pass --max-delete 100% if this is intended")
    return (f"{n_delete} deletes exceed --max-delete {rules.max_delete} ({cap} of {n_local} local files), so "
            f"nothing was deleted; check the prefix, or raise --max-delete if this is intended")

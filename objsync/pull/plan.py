"""The planner: the sorted listing beside the sorted local files, each path decided as the walk passes it.

Both sides come in the order of their paths (S3 lists keys in UTF-8 byte order, which is the order
of code points), so a pass holds a handful of paths at a time instead of maps of every file:

- a key listed twice is next to itself;
- a path stays open until the walk has passed every path that starts with it and "/", so a file
  that is also a folder ("a/b" and "a/b/c"), and a local file in the way of a fetch (a file where
  a folder must go, or a folder where a file must go), are met while both are open.

Keys that are not ASCII wait for the end, where Unicode look-alikes are found among them. Fetches
that need a local path removed first wait for the delete guard, which needs the whole pass's counts.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import Callable, Iterable, Iterator, Mapping

from objsync.model import Entry, Fetch, LocalFile, Plan, Rejected, RemoteObject
from objsync.paths import (
    UnsafeKey,
    check_relative,
    is_dir_marker,
    is_reserved,
    nfc,
    normalize_prefix,
)
from objsync.pull.decide import Rules, decide, delete_guard

Lookup = Callable[[list[str]], Mapping[str, Entry]]  # the cache's entries for a page of paths
CHUNK = 1000  # paths looked up in the cache at once: one listing page


class Unsorted(Exception):
    """A side of the march did not come in the order of its paths."""


@dataclass(eq=False)
class _Path:
    """One path of the pass, with what each side has there and what was met below or above it."""

    rel: str
    obj: RemoteObject | None = None
    lf: LocalFile | None = None
    entry: Entry | None = None
    twice: RemoteObject | None = None  # a second, different answer for the same key
    conflict: str = ""  # a key below this one: the file is also a folder
    twin: str = ""  # the key this one differs from only in Unicode normalization
    in_way: list[tuple[str, bool]] = field(default_factory=list)  # local files a fetch here must remove: deletable?

    @property
    def known(self) -> bool:
        """Listed, mapped and not rejected for a clash: the local file here is never deleted."""
        return self.obj is not None and not self.conflict and not self.twin


class March:
    """Decides one pass from a sorted listing and the sorted local files, yielding fetches as they are decided.

    `run` yields every fetch that needs no local path removed; then `plan` holds the rest: the fetches
    that do (after the delete guard), the deletes, what was rejected and skipped, and the counts.
    """

    def __init__(self, prefix: str, lookup: Lookup, rules: Rules = Rules(), held: frozenset[str] = frozenset()):
        self.prefix, self.lookup, self.rules, self.held = normalize_prefix(prefix), lookup, rules, held
        self.skipped: Counter[str] = Counter()
        self.rejected: list[Rejected] = []
        self.listed = self.own = self.known = self.local = 0
        self.deletes: list[str] = []
        self.late: list[tuple[Fetch, list[str]]] = []  # fetches that need local files removed first
        self.twins: list[_Path] = []  # keys that are not ASCII, decided at the end
        self._open: list[_Path] = []
        self._ready: list[Fetch] = []
        self.plan: Plan | None = None

    def run(self, listing: Iterable[RemoteObject], local: Iterable[tuple[str, LocalFile]]) -> Iterator[Fetch]:
        """Yield the fetches that can start at once; `self.plan` is set when the generator is exhausted."""
        for path in _merge(self._with_entries(self._remote(listing)), _ordered(local)):
            self._visit(path)
            if self._ready:
                yield from self._ready
                self._ready.clear()
        while self._open:
            self._close(self._open.pop())
        self._settle_twins()
        yield from self._ready
        self._ready.clear()
        self.plan = self._finish()

    # -- the listing side ---------------------------------------------------------------------------

    def _remote(self, listing: Iterable[RemoteObject]) -> Iterator[_Path]:
        """Mapped keys in order, one _Path per key; what cannot be mapped is counted or rejected here."""
        last, pending = "", None
        for obj in listing:
            self.listed += 1
            if obj.key < last:
                raise Unsorted(f"the listing came out of order: {obj.key!r} after {last!r}")
            last = obj.key
            rel = self._map(obj)
            if rel is None:
                continue
            if pending is not None and pending.rel == rel:
                if (pending.obj.etag, pending.obj.size) == (obj.etag, obj.size):
                    self.skipped["listed twice"] += 1  # overlapping pages of one listing: harmless
                else:
                    pending.twice = obj
                continue
            if pending is not None:
                yield pending
            pending = _Path(rel, obj)
        if pending is not None:
            yield pending

    def _map(self, obj: RemoteObject) -> str | None:
        if is_dir_marker(obj.key):
            self.skipped["folder marker"] += 1
            return None
        if not obj.key.startswith(self.prefix):
            self.rejected.append(Rejected(obj.key, f"key is outside the prefix {self.prefix!r}"))
            return None
        rel = obj.key[len(self.prefix):]
        try:
            if is_reserved(rel):
                # `objsync push` keeps manifests here: never mirrored, but a hostile name is still named.
                inner = rel.partition("/")[2]
                if inner:
                    check_relative(inner)
                self.own += 1  # never a candidate for the folder, so neither listed nor skipped
                return None
            check_relative(rel)
        except UnsafeKey as exc:
            self.rejected.append(Rejected(obj.key, str(exc)))
            return None
        return rel

    def _with_entries(self, paths: Iterator[_Path]) -> Iterator[_Path]:
        """The same paths, each with the cache's entry, looked up a page at a time."""
        while chunk := list(islice(paths, CHUNK)):
            entries = self.lookup([p.rel for p in chunk])
            for p in chunk:
                p.entry = entries.get(p.rel)
                yield p

    # -- the walk ------------------------------------------------------------------------------------

    def _visit(self, path: _Path) -> None:
        """Close the open paths the walk has passed, note what `path` means to those still open, and open it."""
        rel = path.rel
        while self._open and not _within(rel, self._open[-1].rel):
            self._close(self._open.pop())
        for above in self._open:
            if not rel.startswith(above.rel + "/"):
                continue
            # A key listed twice differently is kept out of every clash, as it is out of the folder.
            clash = path.obj is not None and above.obj is not None and not (path.twice or above.twice)
            if clash and not above.conflict:
                above.conflict = path.obj.key
            if path.lf is not None and above.obj is not None:
                # A local folder where a file is to go: its files are in the way.
                above.in_way.append((rel, path.obj is None and self._deletable(rel)))
            if above.lf is not None and path.obj is not None:
                # A local file where a folder is to go. Its own key, if any, was just found to clash.
                path.in_way.append((above.rel, not above.known and self._deletable(above.rel)))
        self._open.append(path)

    def _close(self, path: _Path) -> None:
        if path.obj is not None and path.twice is None and not path.rel.isascii():
            self.twins.append(path)  # a look-alike may still come
            return
        self._decide(path)

    def _settle_twins(self) -> None:
        by_form: dict[str, list[_Path]] = {}
        for path in self.twins:
            by_form.setdefault(nfc(path.rel), []).append(path)
        for form, same in by_form.items():
            rels = [p.rel for p in same]
            keep = form if form in rels else min(rels)
            kept = next(p.obj.key for p in same if p.rel == keep)
            for path in sorted(same, key=lambda p: p.rel):
                if path.rel != keep and not path.conflict:
                    path.twin = kept
                self._decide(path)

    def _decide(self, path: _Path) -> None:
        """What the pass does at one path: fetch, reject, delete, or nothing."""
        rel, obj = path.rel, path.obj
        if path.lf is not None:
            self.local += 1
        if path.known:
            self.known += 1
        elif path.lf is not None and self._deletable(rel):
            self.deletes.append(rel)
        if obj is None:
            return
        if path.conflict:
            self.rejected.append(Rejected(obj.key, f"is both a file and a folder (another key is {path.conflict!r})"))
        elif path.twin:
            self.rejected.append(Rejected(obj.key, f"differs from {path.twin!r} only in Unicode normalization"))
        elif path.twice is not None:
            # Two answers for one name: neither can be trusted, and the local file stays as it is.
            self.rejected.append(Rejected(path.twice.key, "listed twice with different ETags or sizes; the local "
                                                          "file was kept"))
        elif self._held(rel):
            self.skipped["held"] += 1
        elif not self.rules.filter.selects(rel):
            self.skipped["excluded"] += 1
        else:
            fetch = decide(rel, obj, path.entry, path.lf, self.rules.scratch)
            if fetch is None:
                self.skipped["up to date"] += 1
            elif not path.in_way:
                self._ready.append(fetch)
            else:
                stuck = [p for p, deletable in path.in_way if not deletable]
                if stuck:
                    self.rejected.append(Rejected(fetch.key, f"the local path {stuck[0]!r} is in the way and is "
                                                             f"not ours to remove (excluded or kept)"))
                else:
                    self.late.append((fetch, [p for p, _ in path.in_way]))

    def _deletable(self, rel: str) -> bool:
        """Whether a local file at `rel` may go, if nothing listed claims it."""
        return not is_reserved(rel) and self.rules.filter.selects(rel) and not self._held(rel)

    def _held(self, rel: str) -> bool:
        return bool(self.held) and rel.partition("/")[0] in self.held

    def partial(self) -> Plan:
        """What is known of a plan whose walk stopped part-way: nothing in it may be deleted."""
        return Plan(self.listed - self.own, (), (), (), tuple(self.rejected), dict(self.skipped), None)

    def _finish(self) -> Plan:
        displaced = sorted({p for _, in_way in self.late for p in in_way})
        gone = set(displaced)
        deletes = sorted(rel for rel in self.deletes if rel not in gone)
        late = [f for f, _ in self.late]
        why = delete_guard(len(deletes) + len(displaced), self.known, self.local, self.rules)
        if why:
            # Nothing may be deleted, including files that fetches would have pushed aside.
            self.rejected.extend(Rejected(f.key, "a local path in the way would need deleting, and deletes "
                                                 "are held back this pass") for f in late)
            late, displaced, deletes = [], [], []
        return Plan(self.listed - self.own, tuple(late), tuple(deletes), tuple(displaced), tuple(self.rejected),
                    dict(self.skipped), why)


def _within(rel: str, above: str) -> bool:
    """Whether the walk, now at `rel`, may still meet paths below `above` (it has not passed `above/`)."""
    return rel < above + "/" or rel.startswith(above + "/")


def _ordered(local: Iterable[tuple[str, LocalFile]]) -> Iterator[tuple[str, LocalFile]]:
    last = None
    for rel, lf in local:
        if last is not None and rel <= last:
            raise Unsorted(f"local files came out of order: {rel!r} after {last!r}")
        last = rel
        yield rel, lf


def _merge(remote: Iterator[_Path], local: Iterator[tuple[str, LocalFile]]) -> Iterator[_Path]:
    """One _Path per path of either side, in order."""
    r, loc = next(remote, None), next(local, None)
    while r is not None or loc is not None:
        if loc is None or (r is not None and r.rel < loc[0]):
            yield r
            r = next(remote, None)
        elif r is None or loc[0] < r.rel:
            yield _Path(loc[0], lf=loc[1])
            loc = next(local, None)
        else:
            r.lf = loc[1]
            yield r
            r, loc = next(remote, None), next(local, None)


class Planned:
    """A plan in the making: `ready` yields fetches as they are decided; `plan` holds the rest once it is exhausted."""

    def __init__(self, march: March, listing: Iterable[RemoteObject], local: Iterable[tuple[str, LocalFile]]) -> None:
        self._march = march
        self._whole: Plan | None = None
        self.ready: Iterator[Fetch] = march.run(listing, local)

    @property
    def plan(self) -> Plan:
        """The plan's rest (or all of it, after `whole`); before `ready` is exhausted, what is known, with no deletes."""
        return self._whole or self._march.plan or self._march.partial()

    def whole(self) -> Plan:
        """Every fetch in one Plan, for what needs them all before it starts (a snapshot, a version, a dry run)."""
        if self._whole is None:
            ready = tuple(self.ready)
            rest = self._march.plan
            self._whole = replace(rest, fetches=ready + rest.fetches)
        return self._whole


def plan(listing: Iterable[RemoteObject], prefix: str, state: Mapping[str, Entry],
         local: Mapping[str, LocalFile], rules: Rules = Rules(), held: frozenset[str] = frozenset()) -> Plan:
    """The whole plan of a pass from listings in any order, sorted here; no I/O.

    `held` names top-level folders whose new version could not be read: they are neither changed nor deleted.
    """
    march = March(prefix, lambda rels: {r: state[r] for r in rels if r in state}, rules, held)
    return Planned(march, sorted(listing, key=lambda o: o.key), sorted(local.items())).whole()

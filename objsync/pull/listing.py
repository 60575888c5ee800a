"""Where a pass's listing comes from: one LIST of the prefix, or the repos' manifests (manifests.py).

Manifest mode starts by itself when `<prefix>/.objsync/manifests/` holds manifests (or repos are
pinned), and ends when the last manifest is gone: in both cases within the same pass. The first
pass of a process looks for manifests first, and lists the whole prefix only when there are none. The
planner always sees one listing of the whole prefix and the local files as readers see them, so
every guard applies the same way in both modes.

In LIST mode, a poll whose listing is the one of the last clean pass, byte for byte, ends there:
no parsing, no stat of local files, no plan. Every `rescan_every` the local files are looked at
again: while they are what the cache recorded, the pass still ends there; otherwise it lists again
and plans. The fingerprint of the last clean pass is kept with the cache, so a restart on an
unchanged prefix needs no plan either, nor a look for manifests when that listing held none: it
is one LIST request, like a poll. On request, the next pass lists and plans in full.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Iterator, Mapping, Protocol, Sequence

import xxhash

from objsync.layout import MANIFESTS
from objsync.model import Entry, Kind, LocalFile, Mode, Plan, Problem, RemoteObject
from objsync.paths import normalize_prefix
from objsync.pull.config import DEFAULT_RESCAN
from objsync.pull.state import CacheCorrupt
from objsync.s3.bucket import Bucket
from objsync.s3.errors import describe_error
from objsync.s3.pages import Pages


class LocalTree(Protocol):
    """The destination as readers see it (a Publisher)."""

    root: str

    def scan(self, top: str) -> dict[str, LocalFile]: ...

    def scan_all(self) -> dict[str, LocalFile]: ...

    def walk_all(self) -> Iterable[tuple[str, LocalFile]]: ...


@dataclass(frozen=True)
class View:
    """What one pass plans from: one listing of the prefix and the local files."""

    listing: Iterable[RemoteObject] = ()  # in key order; in LIST mode, read as it is iterated (once)
    local: Iterable[tuple[str, LocalFile]] = ()  # in path order; in LIST mode, walked as it is iterated (once)
    problems: tuple[Problem, ...] = ()  # met while building the view
    listed: int = 0
    mode: Mode = Mode.LIST
    unchanged: bool = False  # nothing changed since the last pass: no plan is needed
    rescan: bool = False  # every local file was looked at
    held: frozenset[str] = frozenset()  # top-level folders whose new version could not be read
    labels: Mapping[str, str] = field(default_factory=dict)  # top-level folder -> version (manifest id)
    memo: object = field(default=None, compare=False, repr=False)  # what `settle` records after the pass


class Source(Protocol):
    """What a pass lists from: a `Listing`, or the manifest of one version (versiontree.py)."""

    def view(self) -> View: ...

    def settle(self, view: View, p: Plan | None, problems: Sequence[Problem], interrupted: bool) -> None: ...


class Strategy(Protocol):
    """Manifest mode, as the Listing drives it."""

    def view(self) -> View | None:
        """The next view, or None when there is no manifest (nor pin) any more."""

    def view_of(self, listing: Sequence[RemoteObject]) -> View | None:
        """The view from a LIST of the whole prefix, or None when it holds no manifest (nor pin)."""

    def present(self) -> bool:
        """Whether manifest mode is due: manifests are published under the prefix, or required."""

    def leave(self) -> None:
        """Forget what manifest mode had applied."""

    def settle(self, view: View, p: Plan | None, problems: Sequence[Problem], interrupted: bool) -> None:
        """Record what the pass brought in."""

    def request_rescan(self) -> None: ...


@dataclass(frozen=True)
class Quiet:
    """What LIST mode knows after a clean pass: the listing's fingerprint, and what to report again."""

    fingerprint: str
    listed: int
    problems: tuple[Problem, ...]
    scanned_at: float
    plain: bool = False  # the listing held no key in the manifests' folder, so it has no manifest to look for


_SAVED = "list:quiet"  # the memo that keeps a clean LIST-mode pass's fingerprint across restarts
_UNSORTED = "list:unsorted"  # the bucket was seen to list out of order
_PLAIN = "no-manifests"  # in the saved memo: its listing held no key in the manifests' folder


class Memos(Protocol):
    """Where a Listing keeps its fingerprint across restarts, and what it checks local files against (State)."""

    memos: Mapping[str, str]

    def each(self) -> Iterable[tuple[str, Entry]]:
        """Every entry of the cache; raises CacheCorrupt when the cache turns out damaged."""

    def put_memo(self, name: str, text: str) -> None: ...

    def drop_memo(self, name: str) -> None: ...


@dataclass
class ListMemo:
    """The fingerprint of a LIST-mode view's listing, known once it is read; kept by `settle` if the pass ends clean."""

    fingerprint: str | None = None
    manifests: bool = False  # a key in the manifests' folder was listed


class ListingFailed(Exception):
    """The listing broke off while it was being read, or came out of order; the message says which."""


class Listing:
    """Builds each pass's View, in LIST mode or in manifest mode (when `manifests` is given and finds any)."""

    def __init__(self, bucket: Bucket, prefix: str, tree: LocalTree, manifests: Strategy | None = None,
                 *, manifest_mode: bool = False, rescan_every: float = DEFAULT_RESCAN,
                 clock: Callable[[], float] = time.monotonic, saved: Memos | None = None,
                 selects: Callable[[str], bool] = lambda rel: True, rules: str = "") -> None:
        self.bucket, self.prefix, self.tree, self.manifests = bucket, normalize_prefix(prefix), tree, manifests
        self.manifest_mode = manifest_mode and manifests is not None
        self.first = True
        self.rescan_every, self.clock = rescan_every, clock
        # `rules`: what else the plan depends on; a fingerprint kept under other rules is not used.
        self.saved, self.selects, self.rules = saved, selects, rules
        self.quiet: Quiet | None = self._load()
        # S3 Express directory buckets do not list in key order, nor does a server once seen not to: such a
        # listing is read whole and sorted before it is planned.
        self.unsorted = bucket.name.endswith("--x-s3") or (saved is not None and _UNSORTED in saved.memos)

    def view(self) -> View:
        """The listing and local files of the next pass; raises when the bucket cannot be listed.

        In LIST mode the listing is read as the plan goes, a page at a time, and the local files are
        walked beside it: neither is held whole. A break in it raises ListingFailed to the planner.
        """
        q = self.quiet
        unchanged: bool | None = None  # not asked yet
        if self.first and not self.manifest_mode and q is not None and q.plain:
            # A restart on the listing of the last clean pass, which held no manifest: none to look for.
            unchanged = self.bucket.unchanged(self.prefix, q.fingerprint)
        # A process starts by looking for manifests: with them, a cold start needs no LIST of every object.
        looked = bool(unchanged)
        if not looked and (self.manifest_mode or (self.first and self.manifests is not None)):
            self.first = False
            found = self.manifests.view()
            if found is not None:
                self.manifest_mode, self.quiet = True, None
                return found
            looked = True  # no manifest now: this pass lists
        self.first = False
        if unchanged is None and q is not None:
            unchanged = self.bucket.unchanged(self.prefix, q.fingerprint)
        if q is not None and unchanged:
            # The listing of the last clean pass, so without manifests.
            if self.clock() - q.scanned_at < self.rescan_every:
                return View(problems=q.problems, listed=q.listed, unchanged=True)
            # One file at a time: a quiet rescan of a large folder holds no map of it.
            if self.saved is not None and self._intact():
                self.quiet = replace(q, scanned_at=self.clock())
                return View(problems=q.problems, listed=q.listed, unchanged=True, rescan=True)
            # Local files are not what the cache recorded: plan from the listing, read again.
        self.quiet = None
        if self.manifest_mode:
            self.manifests.leave()
            self.manifest_mode = False
        memo = ListMemo()
        if self.manifests is not None and not looked and self.manifests.present():
            objects = self._whole(memo)
            found = self.manifests.view_of(objects)
            if found is not None:
                self.manifest_mode = True
                self._save(None)
                return found
            listing: Iterable[RemoteObject] = sorted(objects, key=_key)
        elif self.unsorted:
            listing = sorted(self._whole(memo), key=_key)
        else:
            listing = self._streamed(self.bucket.pages(self.prefix), memo)
        return View(listing, self.tree.walk_all(), rescan=True, memo=memo)

    def _whole(self, memo: ListMemo) -> list[RemoteObject]:
        """The whole listing at once, for manifest mode to look at or to sort; its fingerprint goes to `memo`."""
        pages = self.bucket.pages(self.prefix)
        objects = list(pages)
        memo.fingerprint = pages.fingerprint
        folder = self.prefix + MANIFESTS
        memo.manifests = any(o.key.startswith(folder) for o in objects)
        return objects

    def _streamed(self, pages: Pages, memo: ListMemo) -> Iterator[RemoteObject]:
        """The listing as it is read. A server that lists out of order is, from the next pass, listed whole and sorted."""
        found, last, folder = iter(pages), "", self.prefix + MANIFESTS
        while True:
            try:
                obj = next(found, None)
            except Exception as exc:
                raise ListingFailed(f"listing broke off: {describe_error(exc)}") from exc
            if obj is None:
                break
            if obj.key < last:
                self.unsorted = True
                if self.saved is not None:
                    self.saved.put_memo(_UNSORTED, "1")
                raise ListingFailed(f"the bucket listed {obj.key!r} after {last!r}, out of order; from the next "
                                    f"pass the whole listing is read and sorted before it is planned")
            last = obj.key
            if last.startswith(folder):
                memo.manifests = True
            yield obj
        memo.fingerprint = pages.fingerprint

    def settle(self, view: View, p: Plan | None, problems: Sequence[Problem], interrupted: bool) -> None:
        """Record what the pass did, so that the next one can skip what is already in place."""
        if view.mode == Mode.MANIFEST and self.manifests is not None:
            self.manifests.settle(view, p, problems, interrupted)
        elif isinstance(view.memo, ListMemo):
            # Only a pass that left the folder as the listing says lets the next identical listing skip the plan.
            clean = not interrupted and (p is None or not p.delete_blocked) and view.memo.fingerprint is not None
            clean = clean and all(x.kind == Kind.REJECTED for x in problems)
            listed = p.listed if p is not None else view.listed  # what the plan counted: objsync's own keys aside
            self.quiet = (Quiet(view.memo.fingerprint, listed, tuple(problems), self.clock(),
                                plain=not view.memo.manifests) if clean else None)
            self._save(self.quiet if clean and not problems else None)

    def request_rescan(self) -> None:
        """Look at every local file (and every top-level folder of the bucket) at the next pass."""
        self.quiet = None
        if self.manifests is not None:
            self.manifests.request_rescan()

    def _intact(self) -> bool:
        try:
            return matches_cache(self.saved.each(), self.tree.walk_all(), self.selects)
        except CacheCorrupt:
            return False  # set aside and started afresh: the plan verifies what is in place

    def _load(self) -> Quiet | None:
        """The fingerprint a previous run kept, due for a look at local files at once."""
        text = self.saved.memos.get(_SAVED, "") if self.saved is not None else ""
        rules, fingerprint, listed, plain = (text.split("\n") + ["", "", ""])[:4]
        if not text or rules != self.rules or not listed.isdigit():
            return None
        return Quiet(fingerprint, int(listed), (), float("-inf"), plain=plain == _PLAIN)

    def _save(self, q: Quiet | None) -> None:
        if self.saved is None:
            return
        if q is None:
            self.saved.drop_memo(_SAVED)
            return
        text = f"{self.rules}\n{q.fingerprint}\n{q.listed}\n{_PLAIN if q.plain else ''}"
        if self.saved.memos.get(_SAVED) != text:
            self.saved.put_memo(_SAVED, text)


def _key(obj: RemoteObject) -> str:
    return obj.key


def matches_cache(cached: Iterable[tuple[str, Entry]], local: Iterable[tuple[str, LocalFile]],
                  selects: Callable[[str], bool]) -> bool:
    """True when the selected local files are exactly those the cache recorded, each as it recorded it.

    Each side streams in its own order, so each is summed into a digest that no order changes, not held.
    """
    total = count = 0
    for rel, lf in local:
        if selects(rel):
            if lf.is_link:
                return False
            total, count = total + _digest(rel, lf.size, lf.mtime_ns), count + 1
    for rel, e in cached:
        if selects(rel):
            total, count = total - _digest(rel, e.size, e.mtime_ns), count - 1
    return count == 0 and total % (1 << 128) == 0


def _digest(rel: str, size: int, mtime_ns: int) -> int:
    return xxhash.xxh3_128_intdigest(f"{rel}\0{size}\0{mtime_ns}".encode("utf-8", "surrogatepass"))

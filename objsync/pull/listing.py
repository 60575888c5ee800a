"""Where a pass's listing comes from: one LIST of the prefix, or the repos' manifests (manifests.py).

Manifest mode starts by itself when `<prefix>/.objsync/manifests/` holds manifests (or repos are
pinned), and ends when the last manifest is gone: in both cases within the same pass. The first
pass of a process looks for manifests first, and lists the whole prefix only when there are none. The
planner always sees one listing of the whole prefix and the local files as readers see them, so
every guard applies the same way in both modes.

In LIST mode, a poll whose listing is the one of the last clean pass, byte for byte, ends there:
no parsing, no stat of local files, no plan. Every `rescan_every`, or on request, the local files
are looked at again, as in manifest mode.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Protocol, Sequence

from objsync.model import Kind, LocalFile, Mode, Plan, Problem, RemoteObject
from objsync.paths import normalize_prefix
from objsync.pull.config import DEFAULT_RESCAN
from objsync.s3.bucket import Bucket


class LocalTree(Protocol):
    """The destination as readers see it (a Publisher)."""

    root: str

    def scan(self, top: str) -> dict[str, LocalFile]: ...

    def scan_all(self) -> dict[str, LocalFile]: ...


@dataclass(frozen=True)
class View:
    """What one pass plans from: one listing of the prefix and the local files."""

    listing: Sequence[RemoteObject] = ()
    local: Mapping[str, LocalFile] = field(default_factory=dict)
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


@dataclass(frozen=True)
class ListMemo:
    """The fingerprint of a LIST-mode view's listing, kept by `settle` if the pass ends clean."""

    fingerprint: str


class Listing:
    """Builds each pass's View, in LIST mode or in manifest mode (when `manifests` is given and finds any)."""

    def __init__(self, bucket: Bucket, prefix: str, tree: LocalTree, manifests: Strategy | None = None,
                 *, manifest_mode: bool = False, rescan_every: float = DEFAULT_RESCAN,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.bucket, self.prefix, self.tree, self.manifests = bucket, normalize_prefix(prefix), tree, manifests
        self.manifest_mode = manifest_mode and manifests is not None
        self.first = True
        self.rescan_every, self.clock = rescan_every, clock
        self.quiet: Quiet | None = None

    def view(self) -> View:
        """The listing and local files of the next pass; raises when the bucket cannot be listed."""
        # A process starts by looking for manifests: with them, a cold start needs no LIST of every object.
        if self.manifest_mode or (self.first and self.manifests is not None):
            self.first = False
            found = self.manifests.view()
            if found is not None:
                self.manifest_mode, self.quiet = True, None
                return found
        q = self.quiet
        known = q.fingerprint if q is not None and self.clock() - q.scanned_at < self.rescan_every else ""
        listing, fingerprint = self.bucket.list_changed(self.prefix, known)
        if listing is None:  # the listing of the last clean pass, so without manifests
            return View(problems=q.problems, listed=q.listed, unchanged=True)
        self.quiet = None
        if self.manifests is not None:
            found = self.manifests.view_of(listing)
            if found is not None:
                self.manifest_mode, self.quiet = True, None
                return found
            if self.manifest_mode:
                self.manifests.leave()
            self.manifest_mode = False
        return View(listing, self.tree.scan_all(), listed=len(listing), rescan=True, memo=ListMemo(fingerprint))

    def settle(self, view: View, p: Plan | None, problems: Sequence[Problem], interrupted: bool) -> None:
        """Record what the pass did, so that the next one can skip what is already in place."""
        if view.mode == Mode.MANIFEST and self.manifests is not None:
            self.manifests.settle(view, p, problems, interrupted)
        elif isinstance(view.memo, ListMemo):
            # Only a pass that left the folder as the listing says lets the next identical listing skip the plan.
            clean = not interrupted and (p is None or not p.delete_blocked)
            clean = clean and all(x.kind == Kind.REJECTED for x in problems)
            self.quiet = Quiet(view.memo.fingerprint, view.listed, tuple(problems), self.clock()) if clean else None

    def request_rescan(self) -> None:
        """Look at every local file (and every top-level folder of the bucket) at the next pass."""
        self.quiet = None
        if self.manifests is not None:
            self.manifests.request_rescan()

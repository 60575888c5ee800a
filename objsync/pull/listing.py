"""Where a pass's listing comes from: one LIST of the prefix, or the repos' manifests (manifests.py).

Manifest mode starts by itself when `<prefix>/.objsync/manifests/` holds manifests (or repos are
pinned), and ends when the last manifest is gone: in both cases within the same pass. The first
pass of a process lists the manifests first, and the whole prefix only when there are none. The planner
always sees one listing of the whole prefix and the local files as readers see them, so every
guard applies the same way in both modes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Protocol, Sequence

from objsync.model import LocalFile, Mode, Plan, Problem, RemoteObject
from objsync.paths import normalize_prefix
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


class Listing:
    """Builds each pass's View, in LIST mode or in manifest mode (when `manifests` is given and finds any)."""

    def __init__(self, bucket: Bucket, prefix: str, tree: LocalTree, manifests: Strategy | None = None,
                 *, manifest_mode: bool = False) -> None:
        self.bucket, self.prefix, self.tree, self.manifests = bucket, normalize_prefix(prefix), tree, manifests
        self.manifest_mode = manifest_mode and manifests is not None
        self.first = True

    def view(self) -> View:
        """The listing and local files of the next pass; raises when the bucket cannot be listed."""
        # A process starts by looking for manifests: with them, a cold start needs no LIST of every object.
        if self.manifest_mode or (self.first and self.manifests is not None):
            self.first = False
            found = self.manifests.view()
            if found is not None:
                self.manifest_mode = True
                return found
        listing = self.bucket.list(self.prefix)
        if self.manifests is not None:
            found = self.manifests.view_of(listing)
            if found is not None:
                self.manifest_mode = True
                return found
            if self.manifest_mode:
                self.manifests.leave()
            self.manifest_mode = False
        return View(listing, self.tree.scan_all(), listed=len(listing))

    def settle(self, view: View, p: Plan | None, problems: Sequence[Problem], interrupted: bool) -> None:
        """Record what the pass did, so that the next one can skip what is already in place."""
        if view.mode == Mode.MANIFEST and self.manifests is not None:
            self.manifests.settle(view, p, problems, interrupted)

    def request_rescan(self) -> None:
        """Look at every local file (and every top-level folder of the bucket) at the next pass."""
        if self.manifests is not None:
            self.manifests.request_rescan()

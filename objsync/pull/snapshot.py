"""`--atomic`: each changed top-level folder is published as a complete new tree, swapped in one rename.

A new tree is built at `.objsync/snapshots/<top>/.building-<name>`: files that stay are
hard-linked from the current tree, changed ones are downloaded into it, deleted ones are left
out. Only when every fetch of the folder succeeded (and its deletes are allowed) is it published
(store.py); otherwise it is discarded and the folder keeps its current tree. Files directly in
the destination are handled in place.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Mapping, Sequence

from objsync.model import Entry, Fetch, FetchResult, Fsync, Job, Kind, LocalFile, Outcome, Plan, Problem
from objsync.pull import store
from objsync.pull.local import top_names, walk_below, walk_tree
from objsync.pull.places import sync_path
from objsync.pull.plan import Planned
from objsync.pull.publish import Finished, InPlace
from objsync.pull.state import State


@dataclass(frozen=True)
class Build:
    """A new tree for one top-level folder: its name, the fetches into it and the paths it leaves out."""

    top: str
    name: str
    fetches: tuple[Fetch, ...]
    gone: frozenset[str]  # paths (from the root) that the new tree leaves out: deletes and displaced

    @property
    def building(self) -> str:
        """Where the tree is filled, relative to the destination."""
        return f"{store.STORE}/{self.top}/.building-{self.name}"


def plan_builds(p: Plan, labels: Mapping[str, str], stamp: int) -> dict[str, Build]:
    """One Build per top-level folder that the plan changes (fetches, deletes or displaced files below it)."""
    fetches: dict[str, list[Fetch]] = {}
    for rel in (*p.deletes, *p.displaced, *(f.rel for f in p.fetches)):
        top, sep, _ = rel.partition("/")
        if sep:
            fetches.setdefault(top, [])
    for f in p.fetches:
        top, sep, _ = f.rel.partition("/")
        if sep:
            fetches[top].append(f)
    gone = [rel for rel in (*p.deletes, *p.displaced) if "/" in rel]
    builds = {}
    for top, into in sorted(fetches.items()):
        label = labels.get(top)
        name = f"{label}-{stamp}" if label else str(stamp)
        builds[top] = Build(top, name, tuple(into), frozenset(rel for rel in gone if rel.startswith(top + "/")))
    return builds


def link_tree(source: str, target: str, paths: Sequence[str]) -> None:
    """Create `target` and hard-link into it each of `paths` (relative) from `source`; copy where links fail."""
    os.makedirs(target)
    for sub in paths:
        dst = os.path.join(target, sub)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        try:
            os.link(os.path.join(source, sub), dst, follow_symlinks=False)
        except FileNotFoundError:
            pass  # gone since the scan: a fetch brings it back if it is listed
        except OSError:
            shutil.copy2(os.path.join(source, sub), dst, follow_symlinks=False)


class Snapshot:
    """A publisher whose top-level folders are symlinks to complete trees in the snapshot store."""

    def __init__(self, root: str, state: State, *, keep: float, fsync: Fsync) -> None:
        self.root, self.state, self.keep, self.fsync = str(root), state, keep, fsync
        self.flat = InPlace(root, state)  # files directly in the destination

    def scan(self, top: str) -> dict[str, LocalFile]:
        return dict(self._walk(top))

    def scan_all(self) -> dict[str, LocalFile]:
        return dict(self.walk_all())

    def walk_all(self) -> Iterator[tuple[str, LocalFile]]:
        # In path order: a folder sorts as its name and "/", as the paths below it do.
        tops = sorted(top_names(self.root), key=lambda t: t + "/" if os.path.isdir(os.path.join(self.root, t)) else t)
        for top in tops:
            yield from self._walk(top)

    def _walk(self, top: str) -> Iterator[tuple[str, LocalFile]]:
        name = store.current(self.root, top)
        if name is None:
            return walk_below(self.root, top)
        return walk_tree(os.path.join(self.root, store.STORE, top, name), top + "/")

    def tidy(self) -> None:
        store.collect(self.root, self.keep)  # retired trees go even while nothing changes

    def begin(self, planned: Planned, labels: Mapping[str, str]) -> "_SnapshotPass":
        p = planned.whole()  # a tree is built from the whole plan of its folder
        store.ensure_ignore(self.root)
        problems: list[Problem] = []
        if p.delete_blocked:
            builds: dict[str, Build] = {}
            for top in sorted({f.rel.partition("/")[0] for f in p.fetches if "/" in f.rel}):
                problems.append(Problem(f"{top}/", "its new version waits: deletes are held back this pass, and a "
                                                   "version without them would be a mix", Kind.GUARD))
        else:
            builds = plan_builds(p, labels, time.time_ns())
        for build in builds.values():
            self._prepare(build)
        problems += self.flat.clear([rel for rel in p.displaced if "/" not in rel])
        into = {top: os.path.join(self.root, build.building) for top, build in builds.items()}

        def place(f: Fetch) -> Job:
            top, sep, inner = f.rel.partition("/")
            return Job(f, into[top], inner) if sep else Job(f, self.root, f.rel)

        kept = tuple(f for f in p.fetches if "/" not in f.rel or f.rel.partition("/")[0] in builds)
        return _SnapshotPass(self, builds, map(place, kept), tuple(problems))

    def _prepare(self, build: Build) -> None:
        name = store.current(self.root, build.top)
        source = os.path.join(self.root, store.STORE, build.top, name) if name else os.path.join(self.root, build.top)
        start = len(build.top) + 1
        # The current tree is objsync's own: what the plan looked at is what is there now.
        stays = [rel[start:] for rel, _ in self._walk(build.top) if rel.startswith(build.top + "/")
                 and rel not in build.gone]
        link_tree(source, os.path.join(self.root, build.building), stays)

    def publish(self, build: Build, entries: Mapping[str, Entry]) -> Problem | None:
        """Swap a finished tree in; the cache forgets what it leaves out first and learns its new files last."""
        self.state.remove(sorted(build.gone))
        sync = None if self.fsync == Fsync.NONE else (lambda: sync_path(self.root))
        try:
            store.publish(self.root, build.top, os.path.join(self.root, build.building), build.name, sync=sync)
        except OSError as exc:
            self.discard(build)
            return Problem(f"{build.top}/", f"cannot publish its new tree: {exc.strerror or exc}", Kind.FETCH)
        self.state.put(entries.items())
        return None

    def discard(self, build: Build) -> None:
        store.remove_tree(os.path.join(self.root, build.building))


@dataclass
class _SnapshotPass:
    publisher: Snapshot
    builds: Mapping[str, Build]
    jobs: Iterable[Job]
    problems: tuple[Problem, ...]
    held: dict[str, dict[str, Entry]] = field(default_factory=dict)  # entries of each tree, until it is published

    def commit(self, results: Sequence[FetchResult]) -> None:
        direct = []
        for r in results:
            if not r.ok:
                continue
            top = r.rel.partition("/")[0] if "/" in r.rel else None
            if top in self.builds:
                self.held.setdefault(top, {})[r.rel] = r.entry
            else:
                direct.append((r.rel, r.entry))
        self.publisher.state.put(direct)

    def finish(self, p: Plan, outcome: Outcome) -> Finished:
        snap = self.publisher
        flat = snap.flat.delete([rel for rel in p.deletes if "/" not in rel]) if outcome.clean else Finished()
        deleted, problems = flat.deleted, list(flat.problems)
        deletes = set(p.deletes)
        for top, build in self.builds.items():
            # A tree missing a fetch would mix versions, and one leaving files out would delete them.
            if not outcome.succeeded(build.fetches) or (build.gone and not outcome.clean):
                snap.discard(build)  # the folder keeps its current tree; the next pass tries again
                continue
            problem = snap.publish(build, self.held.get(top, {}))
            if problem is not None:
                problems.append(problem)
                continue
            deleted += len(build.gone & deletes)
        store.collect(snap.root, snap.keep)
        return Finished(deleted, tuple(problems))

"""Publishers: how the files a pass fetched, and the deletes it may do, become what readers see.

A Publisher knows the layout of the destination: it scans it as readers see it, and `begin`
turns a plan into a Publication, which says where each fetch is written (its Jobs, made as the
plan decides them), records finished batches in the cache, and at the end makes the pass
visible. `InPlace` writes each file at its path; `Snapshot` (snapshot.py) builds a complete new
tree per top-level folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Protocol, Sequence

from objsync.model import FetchResult, Job, Kind, LocalFile, Outcome, Plan, Problem
from objsync.pull import localfs
from objsync.pull.local import scan_below, scan_tree, walk_tree
from objsync.pull.plan import Planned
from objsync.pull.state import State


@dataclass(frozen=True)
class Finished:
    """What making a pass visible did: files deleted, and what could not be done."""

    deleted: int = 0
    problems: tuple[Problem, ...] = ()


class Publication(Protocol):
    """One pass's publishing: where its fetches go, then commits and the end of the pass."""

    jobs: Iterable[Job]  # made as they are reached: a pass of 100,000 fetches holds a batch of them at a time
    problems: tuple[Problem, ...]  # met while placing (a file in the way that could not be moved)

    def commit(self, results: Sequence[FetchResult]) -> None:
        """Record a finished batch (in the cache now, or when its tree is published)."""

    def finish(self, p: Plan, outcome: Outcome) -> Finished:
        """Make the pass visible; the plan's deletes only when every fetch succeeded (`outcome.clean`)."""


class Publisher(Protocol):
    """The destination's layout: how it is scanned, and how a plan is published into it."""

    root: str

    def scan(self, top: str) -> dict[str, LocalFile]:
        """The files at or below one top-level name, as readers see them."""

    def scan_all(self) -> dict[str, LocalFile]:
        """Every file of the destination, as readers see it."""

    def walk_all(self) -> Iterable[tuple[str, LocalFile]]:
        """What scan_all finds, one (path, file) at a time, without holding them all."""

    def begin(self, planned: Planned, labels: Mapping[str, str]) -> Publication:
        """Prepare to carry out a plan, as it is made or whole; `labels` names the version of some top-level
        folders (manifest ids)."""

    def tidy(self) -> None:
        """Routine clean-up on a pass that changed nothing."""


class InPlace:
    """Each file is renamed into place at its own path; deletes remove files where they are."""

    def __init__(self, root: str, state: State) -> None:
        self.root, self.state = str(root), state

    def scan(self, top: str) -> dict[str, LocalFile]:
        return scan_below(self.root, top)

    def scan_all(self) -> dict[str, LocalFile]:
        return scan_tree(self.root)

    def walk_all(self) -> Iterator[tuple[str, LocalFile]]:
        return walk_tree(self.root)

    def begin(self, planned: Planned, labels: Mapping[str, str]) -> "_InPlacePass":
        return _InPlacePass(self, planned)

    def tidy(self) -> None:
        pass

    def clear(self, displaced: Sequence[str]) -> list[Problem]:
        """Remove local files that stand where a fetch must go (the cache forgets them first)."""
        if not displaced:
            return []
        self.state.remove(displaced)
        problems = []
        for rel in displaced:
            try:
                localfs.remove_file(Path(self.root), rel)
            except OSError as exc:  # the fetch that needed the room then fails and is reported too
                problems.append(Problem(rel, f"cannot move aside: {exc.strerror or exc}", Kind.DELETE))
        localfs.prune_empty_dirs(Path(self.root), list(displaced))
        return problems

    def delete(self, rels: Iterable[str]) -> Finished:
        """Forget, then remove, local files; the cache never claims a file that is gone."""
        rels = list(rels)
        if not rels:
            return Finished()
        self.state.remove(rels)
        deleted, problems = 0, []
        for rel in rels:
            try:
                deleted += localfs.remove_file(Path(self.root), rel)
            except OSError as exc:
                problems.append(Problem(rel, f"cannot delete: {exc.strerror or exc}", Kind.DELETE))
        localfs.prune_empty_dirs(Path(self.root), rels)
        return Finished(deleted, tuple(problems))


class _InPlacePass:
    """Fetches start as the plan decides them; those that need a local path out of the way come last."""

    def __init__(self, publisher: InPlace, planned: Planned) -> None:
        self.publisher, self.planned = publisher, planned
        self.problems: tuple[Problem, ...] = ()
        self.jobs = self._jobs()

    def _jobs(self) -> Iterator[Job]:
        root = self.publisher.root
        for f in self.planned.ready:
            yield Job(f, root, f.rel)
        p = self.planned.plan  # complete now: the delete guard has spoken
        self.problems = tuple(self.publisher.clear(p.displaced))
        for f in p.fetches:
            yield Job(f, root, f.rel)

    def commit(self, results: Sequence[FetchResult]) -> None:
        self.publisher.state.put((r.rel, r.entry) for r in results if r.ok)

    def finish(self, p: Plan, outcome: Outcome) -> Finished:
        return self.publisher.delete(p.deletes) if outcome.clean else Finished()

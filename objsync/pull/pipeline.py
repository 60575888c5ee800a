"""One pull pass: list -> plan -> fetch -> commit, then the deletes, only when every fetch succeeded."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import BrokenExecutor  # not .process's BrokenProcessPool: that import loads multiprocessing
from dataclasses import replace
from typing import Callable, Iterator, Protocol, Sequence

from objsync.model import Action, FetchResult, Job, Kind, Mode, Outcome, PassReport, Plan, Problem
from objsync.pull.config import PullConfig
from objsync.pull.listing import Source
from objsync.pull.plan import plan
from objsync.pull.publish import Publisher
from objsync.pull.state import State
from objsync.s3.errors import describe_error

log = logging.getLogger("objsync.pull")


class Fetcher(Protocol):
    """Runs jobs in batches, yielding each batch's results as it completes (the worker pool)."""

    def run(self, jobs: Sequence[Job], stop: threading.Event | None = None) -> Iterator[list[FetchResult]]: ...


def pull_pass(cfg: PullConfig, listing: Source, state: State, fetcher: Fetcher, publisher: Publisher, *,
              stop: threading.Event | None = None,
              on_plan: Callable[[Plan], None] | None = None,
              on_results: Callable[[Sequence[FetchResult]], None] | None = None) -> PassReport:
    """Run one pass; every failure ends up in the report, and nothing good is lost."""
    started = time.monotonic()
    try:
        view = listing.view()
    except Exception as exc:
        return PassReport(seconds=time.monotonic() - started, errors=(
            Problem(str(cfg.source), f"listing failed: {describe_error(exc)}", Kind.LISTING),))
    problems = list(view.problems)
    if view.unchanged:
        if view.rescan and not cfg.dry_run:
            publisher.tidy()
        listing.settle(view, None, problems, interrupted=False)
        return PassReport(listed=view.listed, skipped=view.listed, seconds=time.monotonic() - started,
                          errors=tuple(problems), mode=view.mode, dry_run=cfg.dry_run)

    p = plan(view.listing, cfg.prefix, state.entries, view.local, cfg.rules, view.held)
    # The fetches carry what they need of the listing and the cache: neither is held through the fetch.
    view = replace(view, listing=())
    state.unload()
    problems += [Problem(r.key, r.reason, Kind.REJECTED) for r in p.rejected]
    if on_plan is not None:
        on_plan(p)
    if cfg.dry_run:
        # What the pass would do: a fetch that would find the right bytes in place counts as a fetch.
        return _report(p, started, problems, view.mode, fetched=len(p.fetches), deleted=len(p.deletes) +
                       len(p.displaced), nbytes=sum(f.size for f in p.fetches), dry_run=True)

    publication = publisher.begin(p, view.local, view.labels)
    problems += publication.problems
    failed: set[str] = set()
    fetched = verified = nbytes = 0
    broken = False
    try:
        for results in fetcher.run(publication.jobs, stop):
            publication.commit(results)
            for r in results:
                if r.ok:
                    fetched += r.action == Action.FETCHED
                    verified += r.action == Action.VERIFIED
                    nbytes += r.bytes
                else:
                    failed.add(r.rel)
                    problems.append(Problem(r.key, r.error or "failed", Kind.FETCH))
            if on_results is not None:
                on_results(results)
    except BrokenExecutor as exc:
        broken = True
        problems.append(Problem("<workers>", f"a worker process died ({exc}); the next pass retries", Kind.FETCH))
    interrupted = stop is not None and stop.is_set()

    if p.delete_blocked:
        problems.append(Problem(str(cfg.source), p.delete_blocked, Kind.GUARD))
    # A failed or missing fetch can mean a wrong listing: nothing is deleted on its word.
    outcome = Outcome(frozenset(failed), complete=not (interrupted or broken))
    if p.deletes and not outcome.clean:
        log.warning("%d deletes wait for a pass in which every fetch succeeds", len(p.deletes))
    finished = publication.finish(p, outcome)
    problems += finished.problems
    listing.settle(view, p, problems, interrupted)
    return _report(p, started, problems, view.mode, fetched=fetched, verified=verified, deleted=finished.deleted,
                   nbytes=nbytes, interrupted=interrupted)


def _report(p: Plan, started: float, problems: list[Problem], mode: Mode, *, fetched: int = 0, verified: int = 0,
            deleted: int = 0, nbytes: int = 0, interrupted: bool = False, dry_run: bool = False) -> PassReport:
    return PassReport(listed=p.listed, fetched=fetched, verified=verified, deleted=deleted,
                      skipped=p.skipped_total, bytes=nbytes, seconds=time.monotonic() - started,
                      errors=tuple(problems), interrupted=interrupted, plan=p if dry_run else None, mode=mode,
                      dry_run=dry_run)

"""One pull pass: list -> plan -> fetch -> commit, then the deletes, only when every fetch succeeded.

The three first overlap: the listing is read, planned and fetched a page at a time.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import BrokenExecutor  # not .process's BrokenProcessPool: that import loads multiprocessing
from typing import Callable, Iterable, Iterator, Protocol, Sequence

from objsync.model import Action, FetchResult, Job, Kind, Mode, Outcome, PassReport, Plan, Problem
from objsync.pull.config import PullConfig
from objsync.pull.listing import ListingFailed, Source
from objsync.pull.plan import March, Planned, Unsorted
from objsync.pull.publish import Publisher
from objsync.pull.state import State
from objsync.s3.errors import describe_error

log = logging.getLogger("objsync.pull")


class Fetcher(Protocol):
    """Runs jobs in batches, yielding each batch's results as it completes (the worker pool)."""

    def run(self, jobs: Iterable[Job], stop: threading.Event | None = None) -> Iterator[list[FetchResult]]: ...


def pull_pass(cfg: PullConfig, listing: Source, state: State, fetcher: Fetcher, publisher: Publisher, *,
              stop: threading.Event | None = None,
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

    # The plan is made as the listing is read, and its fetches start as they are decided.
    planned = Planned(March(cfg.prefix, state.lookup, cfg.rules, view.held), view.listing, view.local)
    failed: set[str] = set()
    fetched = verified = nbytes = 0
    broken = False
    publication = None
    try:
        if cfg.dry_run:
            p = planned.whole()
            problems += [Problem(r.key, r.reason, Kind.REJECTED) for r in p.rejected]
            # What the pass would do: a fetch that would find the right bytes in place counts as a fetch.
            return _report(p, started, problems, view.mode, fetched=len(p.fetches), deleted=len(p.deletes) +
                           len(p.displaced), nbytes=sum(f.size for f in p.fetches), dry_run=True)
        publication = publisher.begin(planned, view.labels)
        state.unload()  # looked up a page at a time from here on; commits go to disk
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
    except (ListingFailed, Unsorted) as exc:
        broken = True  # a listing read in part says nothing of what is not in it: nothing is deleted
        problems.append(Problem(str(cfg.source), f"listing failed: {exc}", Kind.LISTING))
        if publication is None:  # broke off before anything was placed: a dry run's, or a snapshot's whole plan
            listing.settle(view, None, problems, interrupted=True)
            return _report(planned.plan, started, problems, view.mode, dry_run=cfg.dry_run)
    interrupted = stop is not None and stop.is_set()

    p = planned.plan
    problems += [Problem(r.key, r.reason, Kind.REJECTED) for r in p.rejected]
    problems += publication.problems
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

"""One pull pass: list -> plan -> fetch -> commit, then guarded deletes."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from typing import Callable

from objsync.model import Entry, FetchResult, PassReport, Plan, Problem
from objsync.pull import localfs
from objsync.pull.config import PullConfig
from objsync.pull.listing import Source, explain, refine, scan_below
from objsync.pull.plan import plan
from objsync.pull.pool import Pool
from objsync.pull.state import State
from objsync.s3.bucket import Bucket
from objsync.s3.errors import describe_error

log = logging.getLogger(__name__)


def make_source(cfg: PullConfig, bucket: Bucket, state: State) -> Source:
    """The listing side of a pull, which keeps what manifest mode learns from one pass to the next."""
    scan = scan_below
    if cfg.atomic:
        from objsync.pull.snapshots import scan
    return Source(bucket, cfg.prefix, cfg.dest, state, cfg.rules, pins=dict(cfg.pins),
                  rescan_every=cfg.rescan_every, use_manifests=cfg.use_manifests, scan=scan)


def pull_pass(cfg: PullConfig, bucket: Bucket, state: State, pool: Pool, *,
              stop: threading.Event | None = None,
              on_results: Callable[[list[FetchResult]], None] | None = None,
              on_plan: Callable[[Plan], None] | None = None,
              source: Source | None = None) -> PassReport:
    """Run one pass; every failure ends up in the report, and nothing good is lost."""
    started = time.monotonic()
    source = source or make_source(cfg, bucket, state)
    try:
        view = source.view()
    except Exception as exc:
        return PassReport(seconds=time.monotonic() - started, errors=(
            Problem(str(cfg.source), f"listing failed: {describe_error(exc)}", "listing"),))
    problems = [Problem(*t) for t in view.problems]
    if view.unchanged:
        if cfg.atomic and view.rescan:
            from objsync.pull.snapshots import collect

            collect(str(cfg.dest), cfg.keep_snapshots)  # retired trees go even while nothing changes
        return PassReport(listed=view.listed, skipped=view.listed, seconds=time.monotonic() - started,
                          errors=tuple(problems), mode=view.mode)
    p = refine(plan(view.listing, cfg.prefix, state.entries, view.local, view.rules), cfg.prefix, view.versions)
    problems += [Problem(r.key, r.reason, "rejected") for r in p.rejected]
    if on_plan is not None:
        on_plan(p)
    if cfg.dry_run:
        return replace(_report(p, started, problems, plan=p), mode=view.mode)
    if cfg.atomic:
        from objsync.pull import snapshots

        report = snapshots.apply(cfg, p, view.versions, view.local, state, pool, problems, started, stop=stop,
                                 on_results=on_results, in_place=_apply, keep=cfg.keep_snapshots)
    else:
        report = _apply(cfg, p, state, pool, problems, started, stop=stop, on_results=on_results)
    source.settle(p, [(x.key, x.kind) for x in report.errors], interrupted=report.interrupted)
    if view.versions:
        report = replace(report, errors=tuple(replace(x, error=explain(x.error)) if x.kind == "fetch" else x
                                              for x in report.errors))
    return replace(report, mode=view.mode)


def _apply(cfg: PullConfig, p: Plan, state: State, pool: Pool, problems: list[Problem], started: float, *,
           stop: threading.Event | None, on_results: Callable[[list[FetchResult]], None] | None) -> PassReport:
    """Fetch, commit to the cache, then delete only when every fetch succeeded and the guard allows it."""
    root = cfg.dest
    if p.displaced:
        state.remove(p.displaced)
        for rel in p.displaced:
            try:
                localfs.remove_file(root, rel)
            except OSError as exc:  # the fetch that needed the room then fails and is reported too
                problems.append(Problem(rel, f"cannot move aside: {exc.strerror or exc}", "delete"))
        localfs.prune_empty_dirs(root, list(p.displaced))

    fetched = verified = nbytes = 0
    try:
        for results in pool.run(p.fetches, stop=stop):
            state.put((r.rel, Entry(r.etag, r.size, r.mtime_ns, r.xxh3)) for r in results if r.ok)
            for r in results:
                if r.ok:
                    fetched += r.action == "fetched"
                    verified += r.action == "verified"
                    nbytes += r.bytes
                else:
                    problems.append(Problem(r.key, r.error or "failed", "fetch"))
            if on_results is not None:
                on_results(results)
    except BrokenProcessPool as exc:
        problems.append(Problem("<workers>", f"a worker process died ({exc}); the next pass retries", "fetch"))
    interrupted = stop is not None and stop.is_set()
    counts = dict(fetched=fetched, verified=verified, nbytes=nbytes, interrupted=interrupted)

    if p.delete_blocked:
        problems.append(Problem(str(cfg.source), p.delete_blocked, "guard"))
        return _report(p, started, problems, **counts)
    if not p.deletes:
        return _report(p, started, problems, **counts)
    if interrupted or any(x.kind == "fetch" for x in problems):
        log.warning("%d deletes wait for a pass in which every fetch succeeds", len(p.deletes))
        return _report(p, started, problems, **counts)
    state.remove(p.deletes)  # forget first: the cache never claims a file that is gone
    deleted = 0
    for rel in p.deletes:
        try:
            deleted += localfs.remove_file(root, rel)
        except OSError as exc:
            problems.append(Problem(rel, f"cannot delete: {exc.strerror or exc}", "delete"))
    localfs.prune_empty_dirs(root, list(p.deletes))
    return _report(p, started, problems, deleted=deleted, **counts)


def _report(p: Plan, started: float, problems: list[Problem], *, fetched: int = 0, verified: int = 0,
            deleted: int = 0, nbytes: int = 0, interrupted: bool = False, plan: Plan | None = None) -> PassReport:
    return PassReport(listed=p.listed, fetched=fetched, verified=verified, deleted=deleted,
                      skipped=p.skipped_total, bytes=nbytes, seconds=time.monotonic() - started,
                      errors=tuple(problems), interrupted=interrupted, plan=plan)

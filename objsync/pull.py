"""One pull pass: list -> plan -> fetch -> commit, then guarded deletes."""

from __future__ import annotations

import logging
import time
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

from objsync import localfs
from objsync.config import PullConfig
from objsync.plan import Plan, plan
from objsync.pool import Pool
from objsync.remote import describe_error, list_prefix
from objsync.state import Entry, State

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PassReport:
    """The outcome of one pass, as `--json` prints it."""

    listed: int = 0
    fetched: int = 0
    verified: int = 0
    deleted: int = 0
    skipped: int = 0
    bytes: int = 0
    seconds: float = 0.0
    errors: tuple[tuple[str, str], ...] = ()
    transfer_failed: bool = False  # the listing, a fetch or a delete failed (not just a rejected key)
    plan: Plan | None = field(default=None, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def changed(self) -> bool:
        return bool(self.fetched or self.deleted)

    def as_dict(self) -> dict:
        return {
            "listed": self.listed, "fetched": self.fetched, "verified": self.verified,
            "deleted": self.deleted, "skipped": self.skipped, "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "errors": [{"key": k, "error": e} for k, e in self.errors],
        }


def pull_pass(cfg: PullConfig, client, state: State, pool: Pool) -> PassReport:
    """Run one pass; every failure ends up in the report, nothing good is lost."""
    started = time.monotonic()
    root = cfg.dest
    try:
        listing = list(list_prefix(client, cfg.source.bucket, cfg.prefix))
    except Exception as exc:
        return PassReport(seconds=time.monotonic() - started, transfer_failed=True,
                          errors=((str(cfg.source), f"listing failed: {describe_error(exc)}"),))
    local = localfs.scan(root)
    p = plan(listing, cfg.prefix, state.entries, local, cfg.rules)
    errors = [(r.key, r.reason) for r in p.rejected]
    if cfg.dry_run:
        return _report(p, started, errors=errors, plan=p)

    if p.displaced:
        state.remove(p.displaced)
        for rel in p.displaced:
            localfs.remove_file(root, rel)
        localfs.prune_empty_dirs(root, list(p.displaced))

    fetched = verified = nbytes = 0
    failed = False
    try:
        for results in pool.run(p.fetches):
            state.put((r.rel, Entry(r.etag, r.size, r.mtime_ns, r.xxh3)) for r in results if r.ok)
            for r in results:
                if r.ok:
                    fetched += r.action == "fetched"
                    verified += r.action == "verified"
                    nbytes += r.bytes
                else:
                    failed = True
                    errors.append((r.key, r.error or "failed"))
    except BrokenProcessPool as exc:
        failed = True
        errors.append(("<workers>", f"a worker process died ({exc}); the pass will be retried"))

    deleted = 0
    if p.delete_blocked:
        errors.append((str(cfg.source), p.delete_blocked))
    elif failed and p.deletes:
        log.warning("some fetches failed, so %d deletes wait for a clean pass", len(p.deletes))
    elif p.deletes:
        state.remove(p.deletes)  # forget first: the cache never claims a file that is gone
        for rel in p.deletes:
            try:
                deleted += localfs.remove_file(root, rel)
            except OSError as exc:
                failed = True
                errors.append((rel, f"cannot delete: {exc.strerror or exc}"))
        localfs.prune_empty_dirs(root, list(p.deletes))
    return _report(p, started, fetched=fetched, verified=verified, deleted=deleted, nbytes=nbytes,
                   errors=errors, failed=failed or bool(p.delete_blocked))


def _report(p: Plan, started: float, *, fetched: int = 0, verified: int = 0, deleted: int = 0,
            nbytes: int = 0, errors: list, failed: bool = False, plan: Plan | None = None) -> PassReport:
    return PassReport(listed=p.listed, fetched=fetched, verified=verified, deleted=deleted,
                      skipped=p.skipped_total, bytes=nbytes, seconds=time.monotonic() - started,
                      errors=tuple(errors), transfer_failed=failed, plan=plan)

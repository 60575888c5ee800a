"""A pull session: the destination's lock, its cache, the bucket and the fetchers, held open for one or many passes."""

from __future__ import annotations

import logging
import os
import threading
from contextlib import ExitStack, contextmanager
from typing import Callable, Iterator, Sequence

from objsync.model import FetchResult, PassReport, Plan, Problem
from objsync.pull import localfs
from objsync.pull.config import PullConfig, WriteOptions
from objsync.pull.listing import Listing, Source, View
from objsync.pull.manifests import ManifestMode
from objsync.pull.packs import PackedFetcher
from objsync.pull.pipeline import pull_pass
from objsync.pull.pool import Pool
from objsync.pull.publish import InPlace, Publisher
from objsync.pull.state import State
from objsync.s3.bucket import Bucket

log = logging.getLogger("objsync")


class SessionError(Exception):
    """The destination cannot be used (unusable, or locked by another objsync); the message says why."""


class Session:
    """Everything one destination needs between passes; `run_pass` runs list -> plan -> fetch -> commit."""

    def __init__(self, cfg: PullConfig, bucket: Bucket, state: State, pool: Pool) -> None:
        self.cfg, self.state, self.pool = cfg, state, pool
        self.fetcher = PackedFetcher(pool, bucket, _write_options(cfg))
        self.publisher = publisher_for(cfg, state)
        manifests = None
        if cfg.use_manifests:
            manifests = ManifestMode(bucket, cfg.prefix, self.publisher, state, filter=cfg.rules.filter,
                                     pins=dict(cfg.pins), rescan_every=cfg.rescan_every, keys=cfg.verify_keys,
                                     allow_unsigned=cfg.allow_unsigned_folders)
        self.listing = Listing(bucket, cfg.prefix, self.publisher, manifests,
                               manifest_mode=manifests is not None and manifests.active,
                               rescan_every=cfg.rescan_every, saved=state, selects=cfg.rules.filter.selects,
                               rules=f"{cfg.rules!r} atomic={cfg.atomic}")
        self._seen = Seen(self.listing)
        self._empty = False  # the last pass found nothing to mirror (and said so)

    @property
    def listed(self) -> bool:
        """True once a pass has listed the prefix: before that, nothing written to the destination is worth keeping."""
        return self._seen.listed

    def run_pass(self, stop: threading.Event | None = None, *,
                 on_results: Callable[[Sequence[FetchResult]], None] | None = None) -> PassReport:
        """One pass; every failure ends up in the report, and nothing good is lost."""
        report = pull_pass(self.cfg, self._seen, self.state, self.fetcher, self.publisher, stop=stop,
                           on_results=on_results)
        # Nothing listed, nothing deleted and no error: an empty folder stays empty, often from a mistyped
        # prefix. Said once per run of such passes, not at every poll.
        empty = report.ok and not (report.listed or report.deleted)
        if empty and not self._empty:
            log.warning("%s holds no objects to mirror, so %s stays as it is; check the prefix",
                        self.cfg.source, self.cfg.dest)
        self._empty = empty
        return report

    def request_rescan(self) -> None:
        """Look at every local file (and every top-level folder of the bucket) at the next pass."""
        self.listing.request_rescan()

    def warm_up(self) -> None:
        """Start worker processes now, so they warm up while the first listing runs."""
        self.pool.start()


class Seen:
    """A Source that notes whether it ever gave a view."""

    def __init__(self, source: Source) -> None:
        self.source, self.listed = source, False

    def view(self) -> View:
        view = self.source.view()
        self.listed = True
        return view

    def settle(self, view: View, p: Plan | None, problems: Sequence[Problem], interrupted: bool) -> None:
        self.source.settle(view, p, problems, interrupted)


def publisher_for(cfg: PullConfig, state: State) -> Publisher:
    """In place, or (with --atomic) one complete tree per top-level folder behind a symlink."""
    if cfg.atomic:
        from objsync.pull.snapshot import Snapshot

        return Snapshot(str(cfg.dest), state, keep=cfg.keep_snapshots, fsync=cfg.fsync)
    return InPlace(str(cfg.dest), state)


@contextmanager
def open_session(cfg: PullConfig) -> Iterator[Session]:
    """Take the destination's lock and open its cache and fetchers; raises SessionError when it cannot be used.

    A dry run takes no lock and reads the cache as it stands: it writes nothing. A session that never
    listed the prefix (no credentials, a wrong endpoint) removes the folders and files it created.
    """
    if cfg.dry_run:
        with _looking(cfg) as session:
            yield session
        return
    new = frozenset(path for path in localfs.footprint(cfg.dest) if not os.path.lexists(path))
    try:
        localfs.prepare_root(cfg.dest)
        lock = localfs.DirLock(cfg.dest).acquire()
    except localfs.Locked as exc:
        raise SessionError(str(exc)) from None  # what exists is the other objsync's
    except OSError as exc:
        localfs.remove_new(cfg.dest, new)
        raise SessionError(str(exc)) from None
    session = None
    try:
        with ExitStack() as stack:
            localfs.clean_tmp(cfg.dest)
            stack.callback(localfs.clean_tmp, cfg.dest)
            state = stack.enter_context(State.open(localfs.state_dir(cfg.dest) / "cache", cfg.identity))
            for note in state.notes:
                log.warning("%s", note)
            pool = stack.enter_context(Pool(cfg.remote, _write_options(cfg), cfg.pool))
            bucket = stack.enter_context(Bucket(cfg.remote, cfg.source.bucket))
            session = Session(cfg, bucket, state, pool)
            yield session
    finally:
        if session is None or not session.listed:
            localfs.remove_new(cfg.dest, new)  # while the lock is held: no other objsync is using them
        lock.release()


@contextmanager
def _looking(cfg: PullConfig) -> Iterator[Session]:
    """A dry run's session: the destination and its cache as they are, read without a lock."""
    try:
        localfs.check_root(cfg.dest)
    except OSError as exc:
        raise SessionError(str(exc)) from None
    state = State.read_only(localfs.state_dir(cfg.dest) / "cache", cfg.identity)
    for note in state.notes:
        log.warning("%s", note)
    with Pool(cfg.remote, _write_options(cfg), cfg.pool) as pool, Bucket(cfg.remote, cfg.source.bucket) as bucket:
        yield Session(cfg, bucket, state, pool)


def _write_options(cfg: PullConfig) -> WriteOptions:
    return WriteOptions(tmp=str(localfs.tmp_dir(cfg.dest)), bucket=cfg.source.bucket, file_mode=cfg.file_mode,
                        fsync=cfg.fsync)

"""A pull session: the destination's lock, its cache, the bucket and the fetchers, held open for one or many passes."""

from __future__ import annotations

import logging
import threading
from contextlib import ExitStack, contextmanager
from typing import Callable, Iterator, Sequence

from objsync.model import FetchResult, PassReport, Plan
from objsync.pull import localfs
from objsync.pull.config import PullConfig
from objsync.pull.fetch import WriteOptions
from objsync.pull.listing import Listing
from objsync.pull.manifests import ManifestMode
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
        self.publisher = publisher_for(cfg, state)
        manifests = None
        if cfg.use_manifests:
            manifests = ManifestMode(bucket, cfg.prefix, self.publisher, state, filter=cfg.rules.filter,
                                     pins=dict(cfg.pins), rescan_every=cfg.rescan_every)
        self.listing = Listing(bucket, cfg.prefix, self.publisher, manifests,
                               manifest_mode=manifests is not None and manifests.active)

    def run_pass(self, stop: threading.Event | None = None, *,
                 on_plan: Callable[[Plan], None] | None = None,
                 on_results: Callable[[Sequence[FetchResult]], None] | None = None) -> PassReport:
        """One pass; every failure ends up in the report, and nothing good is lost."""
        return pull_pass(self.cfg, self.listing, self.state, self.pool, self.publisher, stop=stop,
                         on_plan=on_plan, on_results=on_results)

    def request_rescan(self) -> None:
        """Look at every local file (and every top-level folder of the bucket) at the next pass."""
        self.listing.request_rescan()

    def warm_up(self) -> None:
        """Start worker processes now, so they warm up while the first listing runs."""
        self.pool.start()


def publisher_for(cfg: PullConfig, state: State) -> Publisher:
    """In place, or (with --atomic) one complete tree per top-level folder behind a symlink."""
    if cfg.atomic:
        from objsync.pull.snapshot import Snapshot

        return Snapshot(str(cfg.dest), state, keep=cfg.keep_snapshots, fsync=cfg.fsync)
    return InPlace(str(cfg.dest), state)


@contextmanager
def open_session(cfg: PullConfig) -> Iterator[Session]:
    """Take the destination's lock and open its cache and fetchers; raises SessionError when it cannot be used."""
    try:
        localfs.prepare_root(cfg.dest)
        lock = localfs.DirLock(cfg.dest).acquire()
    except (OSError, localfs.Locked) as exc:
        raise SessionError(str(exc)) from None
    try:
        with ExitStack() as stack:
            localfs.clean_tmp(cfg.dest)
            stack.callback(localfs.clean_tmp, cfg.dest)
            state = stack.enter_context(State.open(localfs.state_dir(cfg.dest) / "cache", cfg.identity))
            for note in state.notes:
                log.warning("%s", note)
            opts = WriteOptions(tmp=str(localfs.tmp_dir(cfg.dest)), bucket=cfg.source.bucket,
                                file_mode=cfg.file_mode, fsync=cfg.fsync)
            pool = stack.enter_context(Pool(cfg.remote, opts, cfg.pool))
            bucket = stack.enter_context(Bucket(cfg.remote, cfg.source.bucket))
            yield Session(cfg, bucket, state, pool)
    finally:
        lock.release()

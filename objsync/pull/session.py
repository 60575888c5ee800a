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
from objsync.pull.pipeline import make_source, pull_pass
from objsync.pull.pool import Pool
from objsync.pull.state import State
from objsync.s3.bucket import Bucket

log = logging.getLogger("objsync")


class SessionError(Exception):
    """The destination cannot be used (unusable, or locked by another objsync); the message says why."""


class Session:
    """Everything one destination needs between passes; `run_pass` runs list -> plan -> fetch -> commit."""

    def __init__(self, cfg: PullConfig, bucket: Bucket, state: State, pool: Pool) -> None:
        self.cfg, self.bucket, self.state, self.pool = cfg, bucket, state, pool
        self._source = make_source(cfg, bucket, state)

    def run_pass(self, stop: threading.Event | None = None, *,
                 on_plan: Callable[[Plan], None] | None = None,
                 on_results: Callable[[Sequence[FetchResult]], None] | None = None) -> PassReport:
        """One pass; every failure ends up in the report, and nothing good is lost."""
        return pull_pass(self.cfg, self.bucket, self.state, self.pool, stop=stop, source=self._source,
                         on_plan=on_plan, on_results=on_results)

    def request_rescan(self) -> None:
        """Look at every local file (and every top-level folder of the bucket) at the next pass."""
        self._source.request_rescan()

    def warm_up(self) -> None:
        """Start worker processes now, so they warm up while the first listing runs."""
        self.pool.start()


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
            opts = WriteOptions(root=str(cfg.dest), bucket=cfg.source.bucket, file_mode=cfg.file_mode,
                                fsync=cfg.fsync)
            pool = stack.enter_context(Pool(cfg.remote, opts, cfg.pool))
            yield Session(cfg, Bucket(cfg.remote, cfg.source.bucket), state, pool)
    finally:
        lock.release()

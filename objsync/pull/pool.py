"""The worker pool: the coordinator sends batches of fetch tasks, worker processes send back results."""

from __future__ import annotations

import math
import os
import queue
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from itertools import chain, islice
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence

from objsync.model import FetchResult, Job
from objsync.s3.bucket import Bucket
from objsync.s3.config import IN_FLIGHT, RemoteConfig

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

    from objsync.pull.config import WriteOptions


@dataclass(frozen=True)
class PoolConfig:
    """Pool shape: processes (0: in-process lanes; None: `default_workers()`), transfers in flight in each,
    and batch sizes."""

    workers: int | None
    threads: int = IN_FLIGHT
    # 0: twice `threads`. A batch ends when its slowest download does, so a batch no larger than
    # `threads` leaves slots idle for much of its time: behind 20 ms a request, 10,000 files at 64 in
    # flight took 8.42 s in batches of 64 and 7.70 s in batches of 128
    # (benchmarks/results/dags10k-20ms-sweep-2026-11-30-161935.md).
    batch_files: int = 0
    batch_bytes: int = 32 << 20
    inline_max: int = 32  # a pass with this few tasks runs in-process: starting workers costs more

    @property
    def files_per_batch(self) -> int:
        return self.batch_files or 2 * max(1, self.threads)


def default_workers() -> int:
    """In-process on up to 2 CPUs (one process keeps a batch of transfers busy); else one per spare CPU."""
    cpus = available_cpus()
    return 0 if cpus <= 2 else min(8, cpus - 1)


def available_cpus(cgroup: str = "/sys/fs/cgroup") -> int:
    """CPUs this process may use: its affinity, capped by a container's CPU quota (cgroup v2 or v1)."""
    import psutil

    try:
        cpus = len(psutil.Process().cpu_affinity())
    except (AttributeError, psutil.Error):
        cpus = psutil.cpu_count() or 1
    quota = _cgroup_quota(cgroup)
    return max(1, min(cpus, math.ceil(quota))) if quota else cpus


def __getattr__(name: str):
    # psutil loads when CPUs are first counted, which a pass with nothing to fetch never does.
    if name == "psutil":
        import psutil

        return psutil
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _cgroup_quota(root: str) -> float | None:
    """A container's CPU limit in CPUs, or None when there is none (or none can be read)."""
    try:
        quota, period = _read(f"{root}/cpu.max").split()[:2]  # cgroup v2: "max 100000" or "50000 100000"
    except (OSError, ValueError):
        try:
            quota, period = _read(f"{root}/cpu/cpu.cfs_quota_us"), _read(f"{root}/cpu/cpu.cfs_period_us")
        except OSError:
            return None
    try:
        q, p = float(quota), float(period)
    except ValueError:
        return None  # "max": no limit
    return q / p if q > 0 and p > 0 else None


def _read(path: str) -> str:
    with open(path) as fh:
        return fh.read()


def batches(jobs: Iterable[Job], batch_files: int, batch_bytes: int) -> Iterator[tuple[Job, ...]]:
    """Group jobs so that a batch has at most `batch_files` jobs and about `batch_bytes` of data."""
    batch: list[Job] = []
    size = 0
    for job in jobs:
        if batch and (len(batch) >= batch_files or size + job.fetch.size > batch_bytes):
            yield tuple(batch)
            batch, size = [], 0
        batch.append(job)
        size += job.fetch.size
    if batch:
        yield tuple(batch)


STOP_GRACE = 5.0  # seconds that running batches get to finish after a stop request

# Per-process worker state, built once by the initializer: its own client and connection pool.
_worker: "_Worker | None" = None


class _Worker:
    def __init__(self, remote: RemoteConfig, opts: WriteOptions, threads: int, reader: Bucket | None = None) -> None:
        from objsync.pull.fetch import run_batch  # the writer loads with the first worker, not in a quiet pass

        self.run_batch = run_batch
        self.reader = reader or Bucket(remote, opts.bucket)
        self.opts = opts
        self.threads = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fetch")

    def run(self, batch: Sequence[Job], cancelled=None) -> list[FetchResult]:
        return self.run_batch(self.reader, self.opts, batch, lambda fn, items: list(self.threads.map(fn, items)),
                              cancelled)

    def close(self) -> None:
        self.threads.shutdown(wait=True, cancel_futures=True)
        self.reader.close()


def _init_worker(remote: RemoteConfig, opts: WriteOptions, threads: int, pids) -> None:
    global _worker
    pids.put(os.getpid())  # so that the coordinator can kill a worker stuck past the grace period
    # The coordinator decides when to stop; a Ctrl-C on the terminal must not kill workers mid-write.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _worker = _Worker(remote, opts, threads)


def _run_batch(batch: Sequence[Job]) -> list[FetchResult]:
    assert _worker is not None
    return _worker.run(batch)


def _after_grace(stop: threading.Event):
    """A test that turns true `STOP_GRACE` seconds after `stop` is first seen set."""
    seen: list[float] = []

    def cancelled() -> bool:
        if not stop.is_set():
            return False
        if not seen:
            seen.append(time.monotonic())
        return time.monotonic() - seen[0] > STOP_GRACE

    return cancelled


class Pool:
    """Worker processes that outlive one pass, so a daemon pays their start-up once.

    With no worker processes, batches run in-process on `LANES` threads, each with its own reader:
    while one lane waits for its batch's sync to disk, the other keeps downloading.
    """

    LANES = 2

    def __init__(self, remote: RemoteConfig, opts: WriteOptions, cfg: PoolConfig, reader: Bucket | None = None) -> None:
        # `reader`: the bucket in-process lanes read through (and close), for credentials that are not
        # on the default chain, such as an Airflow connection's; worker processes build their own.
        self.remote, self.opts, self.cfg, self._reader = remote, opts, cfg, reader
        self._workers = cfg.workers
        self._executor: ProcessPoolExecutor | None = None
        self._pids = None  # worker PIDs, reported by each worker as it starts
        self._lanes: ThreadPoolExecutor | None = None
        self._spare: "queue.SimpleQueue[_Worker]" = queue.SimpleQueue()
        self._inline: list[_Worker] = []

    @property
    def workers(self) -> int:
        """Worker processes (0: in-process lanes), the default counted only once a pass has work."""
        if self._workers is None:
            self._workers = default_workers()
        return self._workers

    def start(self) -> "Pool":
        """Start the processes now (they warm up while the coordinator lists)."""
        if self.workers <= 0:
            self._start_lanes()
        elif self._executor is None:
            # multiprocessing loads only here: a pass with nothing to fetch starts no process.
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            ctx = multiprocessing.get_context("forkserver")
            self._pids = ctx.SimpleQueue()
            ctx.set_forkserver_preload(["objsync.pull.pool", "objsync.pull.fetch"])
            self._executor = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=ctx,
                initializer=_init_worker, initargs=(self.remote, self.opts, self.cfg.threads, self._pids))
            # Ask every process to start (and build its client) before any real work arrives.
            for _ in range(self.workers):
                self._executor.submit(os.getpid)
        return self

    def _start_lanes(self) -> ThreadPoolExecutor:
        if self._lanes is None:
            first = _Worker(self.remote, self.opts, self.cfg.threads, self._reader)
            self._inline = [first] + [_Worker(self.remote, self.opts, self.cfg.threads, first.reader.sibling())
                                      for _ in range(self.LANES - 1)]
            for worker in self._inline:
                self._spare.put(worker)
            self._lanes = ThreadPoolExecutor(max_workers=self.LANES, thread_name_prefix="lane")
        return self._lanes

    def _run_in_lane(self, batch: Sequence[Job], cancelled) -> list[FetchResult]:
        worker = self._spare.get()
        try:
            return worker.run(batch, cancelled)
        finally:
            self._spare.put(worker)

    def run(self, jobs: Iterable[Job], stop: threading.Event | None = None) -> Iterator[list[FetchResult]]:
        """Run jobs, taken as they come; yield each batch's results as it completes.

        Once `stop` is set no new batch starts; running ones get `STOP_GRACE` seconds to finish.
        Then worker processes are killed (the coordinator's next clean-up removes their temp
        files), and in-process lanes drop the transfers still running.
        """
        jobs = iter(jobs)
        head = list(islice(jobs, self.cfg.inline_max + 1))
        if not head:
            return
        broke: list[Exception] = []

        def groups() -> Iterator[tuple[Job, ...]]:
            # Jobs come as the plan is made: if it breaks off, what runs finishes before the error is raised.
            try:
                yield from batches(chain(head, jobs), self.cfg.files_per_batch, self.cfg.batch_bytes)
            except Exception as exc:
                broke.append(exc)

        if self._executor is None and (len(head) <= self.cfg.inline_max or self.workers <= 0):
            lanes, cancelled = self._start_lanes(), (_after_grace(stop) if stop is not None else None)
            submit, limit = (lambda group: lanes.submit(self._run_in_lane, group, cancelled)), self.LANES
        else:
            self.start()
            assert self._executor is not None
            executor = self._executor
            # Keep only a few batches in flight per worker, so a stop request is honoured quickly.
            submit, limit = (lambda group: executor.submit(_run_batch, group)), self.workers * 2
        pending: set[Future] = set()
        deadline: float | None = None
        try:
            for group in groups():
                if stop is not None and stop.is_set():
                    break
                pending.add(submit(group))
                while len(pending) >= limit and not (stop is not None and stop.is_set()):
                    done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                    for fut in done:
                        yield fut.result()
            while pending:
                if stop is not None and stop.is_set():
                    deadline = deadline or time.monotonic() + STOP_GRACE
                    for fut in pending:
                        fut.cancel()
                    pending = {f for f in pending if not f.cancelled()}
                    if time.monotonic() > deadline and self._executor is not None:
                        self.abort()
                        return
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                for fut in done:
                    yield fut.result()
            if broke:
                raise broke[0]
        except BrokenExecutor:  # BrokenProcessPool: lanes have no initializer that could break theirs
            self.abort()  # the next pass starts fresh workers
            raise
        finally:
            for fut in pending:
                fut.cancel()

    def abort(self) -> None:
        """Kill the worker processes now; used when a stop request outlasts the grace period."""
        if self._executor is None:
            return
        while not self._pids.empty():
            try:
                os.kill(self._pids.get(), signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._executor = None

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        if self._lanes is not None:
            self._lanes.shutdown(wait=True, cancel_futures=True)
            self._lanes = None
            for worker in self._inline:
                worker.close()
            self._inline = []
            self._spare = queue.SimpleQueue()

    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

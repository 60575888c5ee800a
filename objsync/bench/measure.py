"""Run a command and measure its whole process tree: wall time, CPU seconds and peak summed RSS."""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import select
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import psutil

SAMPLE_SECONDS = 0.02
STRAGGLER_GRACE = 10.0
_PR_SET_CHILD_SUBREAPER = 36


@dataclass(frozen=True)
class Usage:
    """What one run cost, summed over every process it started."""

    wall: float
    cpu: float  # user + system seconds
    peak_rss: int  # bytes: the largest sum of RSS over the live tree at one sample
    rc: int
    samples: int


def become_subreaper() -> bool:
    """Adopt orphaned descendants (Linux), so their CPU time reaches RUSAGE_CHILDREN when we reap them."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _proc_children(pid: int) -> list[int]:
    """Child pids from /proc/PID/task/*/children: a few small reads instead of a scan of every process."""
    out: list[int] = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/children") as f:
            out.extend(int(x) for x in f.read().split())
    return out


_FAST_CHILDREN = os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children")


def child_pids(pid: int) -> list[int]:
    try:
        if _FAST_CHILDREN:
            return _proc_children(pid)
        return [c.pid for c in psutil.Process(pid).children()]
    except (OSError, psutil.Error):
        return []


def tree_pids(exclude: frozenset[int]) -> list[int]:
    """Our descendants, apart from the subtrees of the children listed in `exclude`."""
    found = [c for c in child_pids(os.getpid()) if c not in exclude]
    i = 0
    while i < len(found):
        found.extend(child_pids(found[i]))
        i += 1
    return found


class ProcCache:
    """psutil handles by pid, kept between samples (building one reads /proc)."""

    def __init__(self) -> None:
        self._procs: dict[int, psutil.Process] = {}

    def get(self, pids: Sequence[int]) -> list[psutil.Process]:
        procs = {}
        for pid in pids:
            proc = self._procs.get(pid)
            if proc is None:
                with contextlib.suppress(psutil.Error):
                    proc = psutil.Process(pid)
            if proc is not None:
                procs[pid] = proc
        self._procs = procs
        return list(procs.values())


def tree(exclude: frozenset[int]) -> list[psutil.Process]:
    return ProcCache().get(tree_pids(exclude))


def rss_sum(procs: Sequence[psutil.Process]) -> int:
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def cpu_sum(procs: Sequence[psutil.Process]) -> float:
    """User+system seconds of live processes, including children they have reaped."""
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
    return total


class RssSampler(threading.Thread):
    """Samples the summed RSS of the tree every SAMPLE_SECONDS; keeps the peak and, if asked, a series."""

    def __init__(self, exclude: frozenset[int], series_every: float | None = None) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.exclude = exclude
        self.series_every = series_every
        self.peak = 0
        self.samples = 0
        self.series: list[tuple[float, int]] = []
        self._halt = threading.Event()
        self._started_at = time.monotonic()

    def run(self) -> None:
        cache = ProcCache()
        next_point = 0.0
        while not self._halt.is_set():
            procs = cache.get(tree_pids(self.exclude))
            rss = rss_sum(procs)
            self.samples += 1
            self.peak = max(self.peak, rss)
            now = time.monotonic() - self._started_at
            if self.series_every is not None and now >= next_point:
                self.series.append((round(now, 3), rss))
                next_point = now + self.series_every
            self._halt.wait(SAMPLE_SECONDS)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def existing_children() -> frozenset[int]:
    """Children we already have (a server, say): they and their descendants are not measured."""
    return frozenset(child_pids(os.getpid()))


def stop_group(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL it if it has not exited within `timeout`."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def reap_stragglers(exclude: frozenset[int], pgid: int, grace: float = STRAGGLER_GRACE) -> None:
    """Wait for descendants that outlive the main process (reaping the ones we adopted); kill them late."""
    deadline = time.monotonic() + grace
    killed = False
    while left := tree(exclude):
        for pid in child_pids(os.getpid()):
            if pid not in exclude:
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitpid(pid, os.WNOHANG)
        if time.monotonic() > deadline:
            if killed:
                return  # unkillable (stuck in the kernel): give up rather than hang the benchmark
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
            for p in left:
                with contextlib.suppress(psutil.Error):
                    p.kill()
            killed, deadline = True, time.monotonic() + 5.0
        time.sleep(SAMPLE_SECONDS)


def wait_exact(proc: subprocess.Popen, timeout: float | None) -> int:
    """`proc.wait(timeout)`, noticing the exit as it happens.

    With a timeout, Popen.wait looks every 50 ms, which rounded a 30 ms run up to 70 ms: a process's
    pidfd becomes readable the moment it exits (Linux 5.3 and later).
    """
    if timeout is not None and hasattr(os, "pidfd_open"):
        try:
            fd = os.pidfd_open(proc.pid)
        except OSError:
            return proc.wait(timeout)
        try:
            if not select.select([fd], [], [], timeout)[0]:
                raise subprocess.TimeoutExpired(proc.args, timeout)
        finally:
            os.close(fd)
    return proc.wait(timeout)


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_measured(argv: Sequence[str], env: Mapping[str, str], *, stdout: Path, stderr: Path,
                 timeout: float | None = None) -> Usage:
    """Run argv to completion in its own session and measure it; Ctrl-C stops it before re-raising."""
    exclude = existing_children()
    sampler = RssSampler(exclude)
    cpu_before = _children_cpu()
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(list(argv), env=dict(env), stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                start_new_session=True)
        sampler.start()
        try:
            rc = wait_exact(proc, timeout)
        except subprocess.TimeoutExpired:
            stop_group(proc)
            rc = -signal.SIGKILL
            with open(stderr, "ab") as note:
                note.write(f"\nbench: stopped after the {timeout:.0f} s run timeout\n".encode())
        except BaseException:
            stop_group(proc)
            reap_stragglers(exclude, proc.pid, grace=2.0)
            sampler.stop()
            raise
        wall = time.perf_counter() - started
        reap_stragglers(exclude, proc.pid)
        sampler.stop()
    return Usage(wall=wall, cpu=_children_cpu() - cpu_before, peak_rss=sampler.peak, rc=rc,
                 samples=sampler.samples)

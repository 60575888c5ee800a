"""The soak test's daemon: kill -9'd at random moments and restarted at once, as Kubernetes would, and watched."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import IO, Sequence

import psutil

from objsync.bench import promtext
from objsync.bench.soak import Sample


class Supervisor:
    """Runs `objsync ARGV`; every `every` seconds on average (0.5-1.5 times that) kills it with SIGKILL and restarts it."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], log: Path, rng: random.Random, every: float) -> None:
        self.argv, self.env, self.rng, self.every = list(argv), env, rng, every
        self._log: IO[bytes] = open(log, "ab")  # noqa: SIM115 - shared by every life, closed in terminate
        self._calm = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)
        self.proc: subprocess.Popen[bytes] | None = None
        self.life = 0
        self.started = 0.0
        self.kills: list[tuple[float, float]] = []  # when each kill -9 came, and the age of the life it ended
        self.unexpected: list[tuple[int, int]] = []  # (life, exit status) of lives that ended by themselves
        self.stop_rc: int | None = None

    def start(self) -> Supervisor:
        self._spawn()
        self._thread.start()
        return self

    def current(self) -> tuple[subprocess.Popen[bytes] | None, int, float]:
        with self._lock:
            return self.proc, self.life, self.started

    def _spawn(self) -> None:
        proc = subprocess.Popen([sys.executable, "-m", "objsync", *self.argv], env=self.env, stdin=subprocess.DEVNULL,
                                stdout=self._log, stderr=self._log, start_new_session=True)
        with self._lock:
            self.proc, self.life, self.started = proc, self.life + 1, time.monotonic()

    def _run(self) -> None:
        while not self._calm.is_set():
            deadline = time.monotonic() + self.rng.uniform(0.5, 1.5) * self.every
            while not self._calm.wait(0.1):
                proc, life, started = self.current()
                assert proc is not None
                if proc.poll() is not None:
                    self.unexpected.append((life, proc.returncode))
                    self._spawn()
                elif time.monotonic() >= deadline:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)  # the whole group, as a container's end takes its children
                    proc.wait()
                    self.kills.append((time.monotonic(), time.monotonic() - started))
                    self._spawn()
                    break

    def calm(self) -> None:
        """Stop killing; the daemon that runs now stays up."""
        self._calm.set()
        if self._thread.is_alive():
            self._thread.join()

    def terminate(self, timeout: float = 30.0) -> int | None:
        """SIGTERM the daemon as a pod's shutdown does; its exit status, or None when it had to be killed."""
        self.calm()
        proc = self.proc
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                self.stop_rc = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self._log.close()
        return self.stop_rc


def tree_usage(pid: int) -> tuple[int, int]:
    """RSS in bytes and open file descriptors of a process and its children."""
    root = psutil.Process(pid)
    rss = fds = 0
    for p in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            rss += p.memory_info().rss
            fds += p.num_fds()
    return rss, fds


class Sampler:
    """Every `period` seconds: the daemon's RSS and fds, and its pass counters from /metrics, per life."""

    def __init__(self, sup: Supervisor, metrics_url: str, period: float = 1.0) -> None:
        self.sup, self.metrics_url, self.period = sup, metrics_url, period
        self.samples: list[Sample] = []
        self.passes: dict[int, Counter] = {}  # life -> the last pass counts it reported
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            proc, life, started = self.sup.current()
            if proc is None or proc.poll() is not None:
                continue
            try:
                rss, fds = tree_usage(proc.pid)
            except psutil.NoSuchProcess:
                continue
            now = time.monotonic()
            self.samples.append(Sample(now, life, now - started, rss, fds))
            with contextlib.suppress(OSError, ValueError):
                text = promtext.fetch(self.metrics_url, timeout=1.0)
                self.passes[life] = Counter({r: promtext.total(text, promtext.PASSES, {"result": r})
                                             for r in ("ok", "failed")})

    def pass_counts(self) -> Counter:
        """Passes of every life, as each last reported them."""
        out: Counter = Counter()
        for counts in self.passes.values():
            out.update(counts)
        return out

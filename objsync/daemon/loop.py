"""Daemon mode: a pass every interval, backoff on failure, health, metrics, signals and hooks."""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from objsync.model import PassReport
from objsync.pull.report import log_report

log = logging.getLogger("objsync")

BACKOFF_CAP = 12  # the longest wait after failures, in intervals (1 minute at the default 5 s)
HOOK_TIMEOUT = 60.0
# A failed hook's output goes to the log only as a short tail: the rest may hold secrets the hook printed.
HOOK_TAIL_BYTES = 2048
HOOK_TAIL_LINES = 10


@dataclass(frozen=True)
class Hooks:
    """What to run after a pass that changed something."""

    exec_on_change: str | None = None
    touch_file: str | None = None


def next_delay(interval: float, failures: int, rng: random.Random = random.Random()) -> float:
    """Seconds until the next pass: the interval, or after failures an exponential, jittered backoff."""
    if failures <= 0:
        return interval
    ceiling = min(interval * 2 ** (failures - 1), interval * BACKOFF_CAP)
    return ceiling * rng.uniform(0.5, 1.0)


def health_after(failures: int, max_failures: int, ever_succeeded: bool, last_error: str) -> tuple[bool, str]:
    """The health a daemon reports, from its run of consecutive failures."""
    if not ever_succeeded:
        return False, "Pull not finished"
    if max_failures >= 0 and failures >= max_failures and failures > 0:
        return False, f"{failures} consecutive failed passes; last error: {last_error}"
    return True, "GOOD"


class Signals:
    """SIGTERM and SIGINT ask for a clean stop; SIGHUP asks for a pass now, looking at every file."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.hup = threading.Event()
        self.received: int | None = None
        self._old: dict[int, object] = {}

    def install(self) -> "Signals":
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._old[sig] = signal.signal(sig, self._on_stop)
        self._old[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._on_hup)
        return self

    def _on_hup(self, _signum, _frame) -> None:
        self.hup.set()
        self.wake.set()

    def _on_stop(self, signum, _frame) -> None:
        self.received = signum
        self.stop.set()
        self.wake.set()

    def restore(self) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)

    def sleep(self, seconds: float) -> None:
        """Wait for `seconds`, a stop or a SIGHUP, whichever comes first."""
        self.wake.wait(seconds)
        self.wake.clear()


def run_hooks(hooks: Hooks, report: PassReport, dest: Path) -> None:
    """Run the change hooks; a failing hook is logged and never breaks syncing."""
    if hooks.touch_file:
        try:
            Path(hooks.touch_file).touch()
        except OSError as exc:
            log.error("cannot touch %s: %s", hooks.touch_file, exc.strerror or exc)
    if hooks.exec_on_change:
        env = dict(os.environ) | {
            "OBJSYNC_FETCHED": str(report.fetched), "OBJSYNC_DELETED": str(report.deleted),
            "OBJSYNC_VERIFIED": str(report.verified), "OBJSYNC_BYTES": str(report.bytes),
            "OBJSYNC_LISTED": str(report.listed), "OBJSYNC_DEST": str(dest),
        }
        try:
            # A file, not a pipe: memory stays bounded however much the hook prints, and a child it leaves
            # running does not hold run() open until the timeout.
            with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
                proc = subprocess.run(hooks.exec_on_change, shell=True, env=env, timeout=HOOK_TIMEOUT,
                                      stdin=subprocess.DEVNULL, stdout=out, stderr=err)
                if proc.returncode != 0:
                    # stderr is where a failure is explained; stdout may carry whatever the hook printed.
                    shown, name = (err, "stderr") if os.fstat(err.fileno()).st_size else (out, "stdout")
                    tail = output_tail(shown)
                    left_out = os.fstat(out.fileno()).st_size + os.fstat(err.fileno()).st_size - len(tail)
                    log.error("--exec-on-change exited with %d; end of its %s (%d bytes of output not logged): %s",
                              proc.returncode, name, left_out, tail.decode(errors="replace"))
        except subprocess.TimeoutExpired:
            log.error("--exec-on-change ran longer than %.0fs and was stopped", HOOK_TIMEOUT)
        except OSError as exc:
            log.error("--exec-on-change could not start: %s", exc)


def output_tail(out) -> bytes:
    """The last HOOK_TAIL_LINES lines of a hook's output file, cut to at most HOOK_TAIL_BYTES."""
    out.seek(max(0, out.seek(0, os.SEEK_END) - HOOK_TAIL_BYTES))
    return b"\n".join(out.read().rstrip().split(b"\n")[-HOOK_TAIL_LINES:])


def sentry_reporter(dsn: str | None):
    """A function that reports a failed pass to Sentry, or None when SENTRY_DSN is unset or unusable."""
    if not dsn:
        return None
    try:
        import sentry_sdk
    except ImportError:
        log.warning("SENTRY_DSN is set but sentry-sdk is not installed; install objsync[sentry] to report failures")
        return None
    sentry_sdk.init(dsn=dsn)

    def report(message: str) -> None:
        sentry_sdk.capture_message(message, level="error")

    return report


def run_loop(session, *, signals: Signals, hooks: Hooks, max_failures: int,
             status=None, metrics=None, sentry=None) -> int:
    """Pass after pass until a stop signal; returns the exit status (0 after a clean stop)."""
    from objsync.daemon.status import HealthState

    failures, ever_ok, last_error = 0, False, ""
    interval = session.cfg.interval
    while not signals.stop.is_set():
        if signals.hup.is_set():
            signals.hup.clear()
            session.request_rescan()
        report = session.run_pass(signals.stop)
        if report.interrupted:
            break
        if report.transfer_failed:
            failures += 1
            last_error = next((f"{p.key}: {p.error}" for p in report.errors if p.kind != "rejected"), "")
            if sentry is not None:
                sentry(f"objsync pass failed: {last_error}")
        else:
            failures, ever_ok = 0, True
        if metrics is not None:
            metrics.observe(report, failures)
        if status is not None:
            status.health = HealthState(*health_after(failures, max_failures, ever_ok, last_error))
        log_report(report, routine_if_unchanged=True, consecutive_failures=failures)
        if report.changed:
            run_hooks(hooks, report, session.cfg.dest)
        delay = next_delay(interval, failures)
        signals.sleep(max(0.0, delay - report.seconds) if not failures else delay)
    log.info("stopped by signal %s", signals.received)
    return 0

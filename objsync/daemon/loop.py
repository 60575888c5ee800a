"""The daemon's loop: a pass every interval, backoff after failures, health after each pass."""

from __future__ import annotations

import logging
import random
from typing import TYPE_CHECKING, Callable

from objsync.daemon.config import DaemonConfig
from objsync.daemon.hooks import run_hooks
from objsync.daemon.signals import Signals
from objsync.daemon.status import HealthState
from objsync.model import Kind
from objsync.pull.report import log_report

if TYPE_CHECKING:
    from objsync.daemon.metrics import Metrics
    from objsync.daemon.status import StatusServer
    from objsync.pull.session import Session

log = logging.getLogger("objsync")

BACKOFF_CAP = 12  # the longest wait after failures, in intervals (1 minute at the default 5 s)


def next_delay(interval: float, failures: int, rng: random.Random = random.Random()) -> float:
    """Seconds until the next pass: the interval, or after failures an exponential, jittered backoff."""
    if failures <= 0:
        return interval
    ceiling = min(interval * 2 ** (failures - 1), interval * BACKOFF_CAP)
    return ceiling * rng.uniform(0.5, 1.0)


def health_after(failures: int, max_failures: int, ever_succeeded: bool, last_error: str) -> tuple[bool, str]:
    """The health a daemon reports, from its run of consecutive failures."""
    failing = f"{failures} consecutive failed pass{'' if failures == 1 else 'es'}; last error: {last_error}"
    if not ever_succeeded:
        # Starting and failing look alike to a probe (500), not to a person reading the body.
        return False, f"Pull not finished: {failing}" if failures else "Pull not finished"
    if max_failures >= 0 and failures >= max_failures and failures > 0:
        return False, failing
    return True, "GOOD"


def run_loop(session: Session, cfg: DaemonConfig, *, signals: Signals, status: StatusServer | None = None,
             metrics: Metrics | None = None, sentry: Callable[[str], None] | None = None) -> int:
    """Pass after pass until a stop signal; returns the exit status (0 after a clean stop)."""
    failures, ever_ok, last_error = 0, False, ""
    while not signals.stop.is_set():
        if signals.hup.is_set():
            signals.hup.clear()
            session.request_rescan()
        report = session.run_pass(signals.stop)
        if report.interrupted:
            break
        up_to_date = False
        if report.transfer_failed:
            failures += 1
            last_error = next((f"{p.key}: {p.error}" for p in report.errors if p.kind != Kind.REJECTED), "")
            if sentry is not None:
                sentry(f"objsync pass failed: {last_error}")
        else:
            up_to_date = not ever_ok and not report.changed and not report.errors
            failures, ever_ok = 0, True
        if metrics is not None:
            metrics.observe(report, failures)
        if status is not None:
            status.health = HealthState(*health_after(failures, cfg.max_failures, ever_ok, last_error))
        log_report(report, routine_if_unchanged=True, consecutive_failures=failures)
        if up_to_date:
            # A restart into a folder that is already right would otherwise be silent until something changes.
            log.info("%s is up to date with %s (listed %d, nothing to fetch or delete)", session.cfg.dest,
                     session.cfg.source, report.listed)
        if report.changed:
            run_hooks(cfg.hooks, report, session.cfg.dest)
        delay = next_delay(cfg.interval, failures)
        if failures:
            log.warning("pass failed (%d in a row); backing off, next pass in %.1fs", failures, delay,
                        extra={"consecutive_failures": failures, "delay": round(delay, 3)})
        # A healthy loop keeps a steady rhythm: the next pass starts one interval after this one started.
        signals.sleep(max(0.0, delay - report.seconds) if not failures else delay)
    log.info("stopped by signal %s", signals.received)
    return 0

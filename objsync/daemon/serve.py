"""Daemon mode on an open session: the status server, metrics and Sentry around the loop."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from objsync.daemon.config import DaemonConfig
from objsync.daemon.loop import run_loop
from objsync.daemon.metrics import Metrics
from objsync.daemon.sentry import sentry_reporter
from objsync.daemon.signals import Signals
from objsync.daemon.status import StatusServer

if TYPE_CHECKING:
    from objsync.pull.session import Session

log = logging.getLogger("objsync")


def serve(session: Session, cfg: DaemonConfig, signals: Signals) -> int:
    """Serve /health and /metrics, then pass after pass until a stop signal; returns the exit status."""
    metrics = Metrics()
    status = None
    if cfg.status_addr is not None:
        try:
            status = StatusServer(cfg.status_addr, metrics.registry).start()
        except OSError as exc:
            log.error("cannot serve status on %s: %s", cfg.status_addr, exc.strerror or exc)
            return 1
        log.info("serving /health and /metrics on %s", cfg.status_addr)
    log.info("pulling %s into %s every %gs", session.cfg.source, session.cfg.dest, cfg.interval)
    session.warm_up()
    try:
        return run_loop(session, cfg, signals=signals, status=status, metrics=metrics,
                        sentry=sentry_reporter(cfg.sentry_dsn))
    finally:
        if status is not None:
            status.stop()

"""Sentry: report failed passes when a DSN is configured and sentry-sdk is installed."""

from __future__ import annotations

import logging
from typing import Callable

log = logging.getLogger("objsync")


def sentry_reporter(dsn: str | None) -> Callable[[str], None] | None:
    """A function that reports a failed pass to Sentry, or None when there is no DSN or no sentry-sdk."""
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

"""How a finished pass is told: each problem, then one summary line."""

from __future__ import annotations

import logging

from objsync.model import PassReport

log = logging.getLogger("objsync.pull")


def log_report(report: PassReport, *, routine_if_unchanged: bool = False, **extra) -> None:
    """Log each problem, then a one-line summary (at debug level for a routine no-op pass)."""
    for problem in report.errors:
        # A hostile key must not drive the terminal: one with control or format characters is shown escaped.
        shown = problem.key if problem.key.isprintable() else repr(problem.key)
        log.error("%s: %s", shown, problem.error, extra={"key": problem.key, "kind": problem.kind})
    summary = {"summary": report.as_dict() | {"errors": len(report.errors)}, **extra}
    if report.dry_run:
        log.info("dry run: listed %d, would fetch %d (%s) and delete %d, unchanged %d, errors %d in %.2fs",
                 report.listed, report.fetched, _size(report.bytes), report.deleted, report.skipped,
                 len(report.errors), report.seconds, extra=summary)
        return
    quiet = routine_if_unchanged and not report.changed and not report.errors
    log.log(logging.DEBUG if quiet else logging.INFO,
            "listed %d, fetched %d (%s), verified %d, deleted %d, unchanged %d, errors %d in %.2fs%s",
            report.listed, report.fetched, _size(report.bytes), report.verified, report.deleted,
            report.skipped, len(report.errors), report.seconds, " (interrupted)" if report.interrupted else "",
            extra=summary)


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"

"""What `objsync pull` does once its arguments are parsed: one pass with its output, or the daemon."""

from __future__ import annotations

import json
import logging
import signal
import sys
from typing import Sequence, TextIO

from objsync.daemon.config import DaemonConfig
from objsync.daemon.hooks import run_hooks
from objsync.daemon.signals import Signals
from objsync.model import FetchResult, PassReport, Plan
from objsync.pull.config import PullConfig
from objsync.pull.report import log_report
from objsync.pull.session import SessionError, open_session

log = logging.getLogger("objsync")


def run_pull(cfg: PullConfig, daemon: DaemonConfig, *, as_json: bool = False) -> int:
    """Open a session on the destination, then run once (or a dry run) or as a daemon; returns the exit status."""
    signals = Signals().install()
    try:
        with open_session(cfg) as session:
            if not cfg.once and not cfg.dry_run:
                from objsync.daemon.serve import serve  # the status server and metrics load only for a daemon

                return serve(session, daemon, signals)
            progress = Progress() if sys.stderr.isatty() and not as_json else None
            report = session.run_pass(signals.stop, on_results=progress.update if progress else None)
            if progress:
                progress.close()
    except SessionError as exc:
        log.error("%s", exc)
        if as_json:
            print_json(PassReport(dry_run=cfg.dry_run).as_dict() | {"errors": [{"key": str(cfg.dest),
                                                                               "error": str(exc)}]})
        return 1
    finally:
        signals.restore()
    if cfg.dry_run and report.plan is not None:
        print_plan(report.plan, sys.stderr if as_json else sys.stdout)  # with --json, stdout holds one document
    if as_json:
        print_json(report.as_dict())
    log_report(report)
    if report.changed and not cfg.dry_run:
        run_hooks(daemon.hooks, report, cfg.dest)
    return exit_status(report, signals.received)


def exit_status(report: PassReport, received: int | None) -> int:
    """0 when the folder mirrors the prefix, 1 when anything failed, 128+N when signal N interrupted the pass."""
    if report.interrupted:
        return 128 + (received or signal.SIGINT)
    return 0 if report.ok else 1


class Progress:
    """A progress bar on the terminal for `--once`: files done, as the plan is still being made."""

    def __init__(self) -> None:
        self._bar = None

    def update(self, results: Sequence[FetchResult]) -> None:
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(unit="file", desc="objsync", leave=False, file=sys.stderr)
        self._bar.update(len(results))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def print_json(doc: dict) -> None:
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()


def print_plan(p: Plan, out: TextIO) -> None:
    """Print what a dry run would do, one line per file."""
    for f in p.fetches:
        out.write(f"fetch   {f.rel}  ({f.reason}{', verify local bytes first' if f.verify else ''})\n")
    for rel in p.displaced:
        out.write(f"delete  {rel}  (in the way of a fetch)\n")
    for rel in p.deletes:
        out.write(f"delete  {rel}\n")
    for r in p.rejected:
        out.write(f"reject  {r.key!r}: {r.reason}\n")
    for reason, n in sorted(p.skipped.items()):
        out.write(f"skip    {n} ({reason})\n")
    if p.delete_blocked:
        out.write(f"hold    deletes: {p.delete_blocked}\n")

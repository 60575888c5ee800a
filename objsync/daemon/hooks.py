"""Change hooks: after a pass that changed files, touch a file and run a command."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from objsync.model import PassReport

log = logging.getLogger("objsync")

HOOK_TIMEOUT = 60.0
# A failed hook's output goes to the log only as a short tail: the rest may hold secrets the hook printed.
HOOK_TAIL_BYTES = 2048
HOOK_TAIL_LINES = 10


@dataclass(frozen=True)
class Hooks:
    """What to run after a pass that changed something, and the environment the command inherits."""

    exec_on_change: str | None = None
    touch_file: str | None = None
    # Left out of repr and hash: it is objsync's whole environment, credentials included.
    environ: Mapping[str, str] = field(default_factory=dict, repr=False, hash=False)


def run_hooks(hooks: Hooks, report: PassReport, dest: Path) -> None:
    """Run the change hooks; a failing hook is logged and never breaks syncing."""
    if hooks.touch_file:
        try:
            Path(hooks.touch_file).touch()
        except OSError as exc:
            log.error("cannot touch %s: %s", hooks.touch_file, exc.strerror or exc)
    if hooks.exec_on_change:
        _exec(hooks.exec_on_change, dict(hooks.environ) | {
            "OBJSYNC_FETCHED": str(report.fetched), "OBJSYNC_DELETED": str(report.deleted),
            "OBJSYNC_VERIFIED": str(report.verified), "OBJSYNC_BYTES": str(report.bytes),
            "OBJSYNC_LISTED": str(report.listed), "OBJSYNC_DEST": str(dest),
        })


def _exec(command: str, env: dict[str, str]) -> None:
    import subprocess  # loaded only when a hook runs: a --once pull starts sooner without them
    import tempfile

    try:
        # A file, not a pipe: memory stays bounded however much the hook prints, and a child it leaves
        # running does not hold run() open until the timeout.
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.run(command, shell=True, env=env, timeout=HOOK_TIMEOUT,
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

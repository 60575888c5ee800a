"""Quiet polls of a daemon: start it, wait for its first pass, then measure the cost of its next passes.

Passes are counted by objsync's `/metrics`, or, for objinsync (which has no pass counter), by the
"Pull finished in ..." line it logs after each pass.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from objsync.bench import promtext
from objsync.bench.measure import RssSampler, cpu_sum, existing_children, reap_stragglers, stop_group, tree

WARM_UP_TIMEOUT = 120.0
SERIES_SECONDS = 1.0
CHECK_SECONDS = 0.25  # each look at /metrics costs the daemon CPU, so look rarely


@dataclass(frozen=True)
class PollStats:
    """What steady-state polling cost, or why it could not be measured."""

    status: str  # "ok", "skipped" (the daemon is not available) or "failed"
    reason: str = ""
    polls: int = 0
    failed_polls: int = 0
    seconds: float = 0.0
    cpu_per_poll: float | None = None
    pass_seconds: float | None = None  # mean time of one pass, from objsync's own histogram
    requests_per_poll: float | None = None
    peak_rss: int = 0
    rss_first: int = 0
    rss_last: int = 0
    rss_series: tuple[tuple[float, int], ...] = ()


def last_message(stderr: Path) -> str:
    """The last log line of a process, as its message when the line is a JSON log record."""
    try:
        lines = [ln for ln in stderr.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    if not lines:
        return ""
    try:
        record = json.loads(lines[-1])
    except ValueError:
        return lines[-1].strip()
    return str(record.get("msg", lines[-1])) if isinstance(record, dict) else lines[-1].strip()


# Passes so far: (good, failed, seconds spent in them), or None while the daemon cannot tell.
Passes = Callable[[], "tuple[float, float, float] | None"]
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_GO_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
OBJINSYNC_PASS = "Pull finished in "


def _metric_passes(text: str) -> tuple[float, float, float]:
    return (promtext.total(text, promtext.PASSES, {"result": "ok"}),
            promtext.total(text, promtext.PASSES, {"result": "failed"}),
            promtext.total(text, promtext.PASS_SECONDS_SUM))


def metrics_passes(status_url: str) -> Passes:
    """objsync's pass counters, read from its /metrics page."""
    def read() -> tuple[float, float, float] | None:
        try:
            return _metric_passes(promtext.fetch(status_url))
        except OSError:
            return None
    return read


def go_duration(text: str) -> float | None:
    """Seconds in a Go duration as Go prints it (`1m2.5s`, `812.3ms`, `950µs`), or None."""
    text = text.strip()
    parts = _GO_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text.lstrip("+"):
        return None
    return sum(float(n) * _GO_UNITS[u] for n, u in parts)


def objinsync_passes(lines: Sequence[str]) -> tuple[float, float, float]:
    """Passes in objinsync's log: one "Pull finished in <duration> seconds." line each (a failure exits)."""
    count, seconds = 0, 0.0
    for line in lines:
        if OBJINSYNC_PASS not in line:  # most lines: read every quarter second, so skip them unparsed
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        msg = str(record.get("msg", "")) if isinstance(record, dict) else ""
        if msg.startswith(OBJINSYNC_PASS):
            count += 1
            seconds += go_duration(msg[len(OBJINSYNC_PASS):].split(" ")[0]) or 0.0
    return float(count), 0.0, seconds


def log_passes(stderr: Path) -> Passes:
    """objinsync's passes, counted in the log it writes to `stderr` (JSON lines, its production format)."""
    def read() -> tuple[float, float, float] | None:
        try:
            return objinsync_passes(stderr.read_text(errors="replace").splitlines())
        except OSError:
            return None
    return read


def measure_polls(argv: Sequence[str], env: Mapping[str, str], passes: Passes, polls: int, interval: float, *,
                  stderr: Path, requests: Callable[[], int | None], warm_up: float = WARM_UP_TIMEOUT) -> PollStats:
    """Start the daemon, wait up to `warm_up` s for its first good pass, then measure `polls` more passes."""
    exclude = existing_children()
    sampler = RssSampler(exclude, series_every=SERIES_SECONDS)
    with open(stderr, "wb") as err:
        proc = subprocess.Popen(list(argv), env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=err, start_new_session=True)
    sampler.start()
    try:
        return _measure(proc, passes, polls, interval, stderr, requests, sampler, exclude, warm_up)
    finally:
        if proc.poll() is None:
            stop_group(proc, timeout=20.0)
        reap_stragglers(exclude, proc.pid, grace=5.0)
        if sampler.is_alive():
            sampler.stop()


def _measure(proc: subprocess.Popen, passes: Passes, polls: int, interval: float, stderr: Path,
             requests: Callable[[], int | None], sampler: RssSampler, exclude: frozenset[int],
             warm_up: float) -> PollStats:
    started = time.monotonic()
    deadline = started + warm_up
    while True:
        if proc.poll() is not None:
            reason = last_message(stderr) or f"exited with status {proc.returncode}"
            return PollStats(status="skipped", reason=f"the daemon exited at start (status {proc.returncode}): {reason}")
        counts = passes()
        if counts and counts[0] >= 1:
            break
        if time.monotonic() > deadline:
            why = "no good pass" if counts else "its status page never answered"
            return PollStats(status="failed", reason=f"{why} within {warm_up:.0f} s: {last_message(stderr)}")
        time.sleep(CHECK_SECONDS)

    ok0, failed0, sum0 = counts
    procs = tree(exclude)
    cpu0, req0, t0 = cpu_sum(procs), requests(), time.monotonic()
    rss_at = len(sampler.series)
    time.sleep(polls * interval)
    # A pass of a large tree can outlast the interval: the start-up and first pass bound one from above.
    limit = time.monotonic() + polls * max(interval, t0 - started) * 3 + 30
    while True:
        counts = passes()
        if proc.poll() is not None:
            return PollStats(status="failed", reason=f"the daemon died while polling: {last_message(stderr)}")
        if counts and counts[0] + counts[1] >= ok0 + failed0 + polls:
            break
        if time.monotonic() > limit:
            return PollStats(status="failed", reason=f"fewer than {polls} passes in {time.monotonic() - t0:.0f} s")
        time.sleep(CHECK_SECONDS)
    cpu1, req1, t1 = cpu_sum(tree(exclude)), requests(), time.monotonic()
    sampler.stop()
    ok1, failed1, sum1 = counts
    done = int(ok1 + failed1 - ok0 - failed0)
    series = tuple(sampler.series)
    steady = series[rss_at:] or series
    return PollStats(
        status="ok", polls=done, failed_polls=int(failed1 - failed0), seconds=t1 - t0,
        cpu_per_poll=(cpu1 - cpu0) / done, pass_seconds=(sum1 - sum0) / done if sum1 else None,
        requests_per_poll=(req1 - req0) / done if req0 is not None and req1 is not None else None,
        peak_rss=sampler.peak, rss_first=steady[0][1] if steady else 0, rss_last=steady[-1][1] if steady else 0,
        rss_series=series)

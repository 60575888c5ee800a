"""The LIST-mode daemon phase in the report: each daemon's quiet polls over its repeats, against objinsync's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from objsync.bench.phases import PHASE_TITLES, BenchResult, DaemonRecord
from objsync.bench.report import markdown_table, num
from objsync.bench.stats import Spread, ratio, spread

PHASE = "list-daemon"
THEIRS = "objinsync"
CPU_GOAL = 0.5  # our CPU per quiet poll over objinsync's, on the same bucket and interval
MIB = 1 << 20


@dataclass(frozen=True)
class PollRow:
    """One daemon over its measured repeats: CPU per poll, pass time, requests and memory."""

    tool: str
    measured: int  # repeats that polled and left an exact copy
    polls: int
    cpu: Spread | None  # CPU seconds per poll
    pass_seconds: Spread | None
    requests: Spread | None
    rss_last: Spread | None
    peak_rss: Spread | None
    problems: tuple[str, ...] = ()


def _good(d: DaemonRecord) -> bool:
    return d.stats.status == "ok" and d.check is not None and d.check.ok


def _problem(d: DaemonRecord) -> str:
    if d.stats.status != "ok":
        return f"r{d.repeat} {d.stats.status}: {d.stats.reason}"
    return f"r{d.repeat} MISMATCH: {'; '.join(d.check.problems[:3]) if d.check else 'not checked'}"


def rows(result: BenchResult, phase: str = PHASE) -> list[PollRow]:
    """One row per daemon, in the order the tools were given; bad repeats are left out and named."""
    out = []
    for tool in result.tools:
        records = [d for d in result.daemons if d.phase == phase and d.tool == tool]
        if not records:
            continue
        good = [d.stats for d in records if _good(d)]
        out.append(PollRow(
            tool, len(good), sum(s.polls for s in good), spread(s.cpu_per_poll for s in good),
            spread(s.pass_seconds for s in good), spread(s.requests_per_poll for s in good),
            spread(s.rss_last / MIB for s in good), spread(s.peak_rss / MIB for s in good),
            tuple(_problem(d) for d in records if not _good(d))))
    return out


def cpu_ratio(row: PollRow, theirs: PollRow | None) -> float | None:
    """Median CPU per poll over the other daemon's; None when either was not measured."""
    if theirs is None or row.cpu is None or theirs.cpu is None:
        return None
    return ratio(row.cpu.median, theirs.cpu.median)


def _ms(s: Spread | None) -> str:
    return "–" if s is None else f"{num(s.median * 1000, 1)} ({num(s.low * 1000, 1)}–{num(s.high * 1000, 1)})"


def _med(s: Spread | None, digits: int) -> str:
    return "–" if s is None else num(s.median, digits)


def render(found: Sequence[PollRow], interval: float, polls: int) -> str:
    """The Markdown section: a table of the daemons, and whether each objsync build meets the CPU goal."""
    theirs = next((r for r in found if r.tool == THEIRS and r.cpu is not None), None)
    table = [[r.tool, str(r.measured), str(r.polls), _ms(r.cpu), _med(r.pass_seconds, 3), _med(r.requests, 1),
              _med(r.rss_last, 1), _med(r.peak_rss, 1), num(cpu_ratio(r, theirs))] for r in found]
    lines = [f"## {PHASE_TITLES[PHASE]}", "",
             f"Each daemon polls the unchanged prefix every {num(interval, 1)} s on the folder it synced; after its "
             f"first pass, {polls} passes are measured per repeat. CPU is user + system of its process tree over "
             "those passes, per pass: median (min–max) over the repeats. objsync's passes are counted on its "
             f"/metrics, {THEIRS}'s by the line it logs after each pass.", "",
             markdown_table(["daemon", "repeats", "polls", "CPU ms/poll", "pass s", "requests/poll",
                             "RSS MiB (last)", "peak RSS MiB", f"CPU vs {THEIRS}"], table,
                            right=[False, True, True, True, True, True, True, True, True]), ""]
    for r in found:
        if r.tool == THEIRS:
            continue
        got = cpu_ratio(r, theirs)
        if got is None:
            why = f"{THEIRS} was not measured" if theirs is None else f"{r.tool} was not measured"
            lines.append(f"- goal, {r.tool}: CPU per quiet poll ≤ {CPU_GOAL:g} × {THEIRS}'s: cannot tell ({why})")
        else:
            lines.append(f"- goal, {r.tool}: CPU per quiet poll ≤ {CPU_GOAL:g} × {THEIRS}'s: {num(got)}, "
                         f"{'met' if got <= CPU_GOAL else 'NOT met'}")
    lines += [f"- {r.tool}, left out: {p}" for r in found for p in r.problems]
    return "\n".join(lines) + "\n"


def section(result: BenchResult) -> str:
    """The phase's section of the report, or '' when it did not run."""
    found = rows(result)
    return render(found, result.plan.daemon_interval, result.plan.daemon_polls) if found else ""

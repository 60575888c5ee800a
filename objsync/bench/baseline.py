"""objsync against a baseline build of itself, phase by phase: ratios, their spread and a verdict (pure)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from objsync.bench.phases import DAEMON_PHASES, PHASES, BenchResult, DaemonRecord, RunRecord
from objsync.bench.report import markdown_table, num
from objsync.bench.stats import Spread, ratio, spread

MIB = 1 << 20
NO_SPREAD = "no spread (one run each)"
HIGHER, LOWER, WITHIN = "**higher** beyond the noise", "lower beyond the noise", "within the noise"

# (measure, digits shown, value of one run): what a one-shot sync and a daemon poll are judged by.
RUN_MEASURES: tuple[tuple[str, int, Callable[[RunRecord], float | None]], ...] = (
    ("wall s", 2, lambda r: r.wall),
    ("CPU s", 2, lambda r: r.cpu),
    ("peak RSS MiB", 1, lambda r: r.peak_rss / MIB),
    ("requests", 0, lambda r: r.requests),
)
DAEMON_MEASURES: tuple[tuple[str, int, Callable[[DaemonRecord], float | None]], ...] = (
    ("pass s", 3, lambda d: d.stats.pass_seconds),
    ("CPU s/poll", 3, lambda d: d.stats.cpu_per_poll),
    ("requests/poll", 1, lambda d: d.stats.requests_per_poll),
    ("peak RSS MiB", 1, lambda d: d.stats.peak_rss / MIB),
)


@dataclass(frozen=True)
class Versus:
    """One measure of one phase, ours against the baseline, over the repeats both got right."""

    phase: str
    measure: str
    digits: int
    ours: Spread
    base: Spread
    ratio: float | None  # median / median: below 1 means ours is faster, or uses less
    rounds: Spread | None  # ours / base within each round: the two ran back to back, on the same machine state
    noise: float | None  # the larger (max - min) / median of the two tools' repeats
    verdict: str


def judge(ours: Spread, base: Spread) -> str:
    """Beyond the noise only when every run of one build lies above every run of the other."""
    if min(ours.n, base.n) < 2:
        return NO_SPREAD
    if ours.low > base.high:
        return HIGHER
    if ours.high < base.low:
        return LOWER
    return WITHIN


def relative_range(s: Spread) -> float | None:
    return (s.high - s.low) / s.median if s.median else None


def versus(phase: str, measure: str, digits: int, ours: Mapping[int, float | None],
           base: Mapping[int, float | None]) -> Versus | None:
    """Compare two builds' values of one measure, keyed by round; None when either has no value."""
    a, b = spread(ours.values()), spread(base.values())
    if a is None or b is None:
        return None
    paired = spread(ratio(ours[r], base[r]) for r in sorted(ours.keys() & base.keys()))
    noises = [n for n in (relative_range(a), relative_range(b)) if n is not None]
    return Versus(phase, measure, digits, a, b, ratio(a.median, b.median), paired,
                  max(noises) if noises and min(a.n, b.n) > 1 else None, judge(a, b))


def compare(result: BenchResult, ours: str, base: str) -> list[Versus]:
    """Every phase and measure both builds have; failed or mismatched runs are left out of both."""
    out: list[Versus] = []
    for phase in PHASES:
        if phase in DAEMON_PHASES:
            good = [d for d in result.daemons
                    if d.phase == phase and d.stats.status == "ok" and d.check is not None and d.check.ok]
            out += _measured(phase, good, DAEMON_MEASURES, ours, base)
        else:
            good = [r for r in result.runs if r.phase == phase and r.ok]
            out += _measured(phase, good, RUN_MEASURES, ours, base)
    return out


def _measured(phase: str, records: Sequence, measures: Sequence, ours: str, base: str) -> list[Versus]:
    rows = (versus(phase, measure, digits, {x.repeat: value(x) for x in records if x.tool == ours},
                   {x.repeat: value(x) for x in records if x.tool == base}) for measure, digits, value in measures)
    return [row for row in rows if row]


def _cell(s: Spread, digits: int) -> str:
    return f"{num(s.median, digits)} ({num(s.low, digits)}–{num(s.high, digits)})"


def table(rows: Sequence[Versus], ours: str, base: str) -> str:
    lines = [[v.phase, v.measure, _cell(v.ours, v.digits), _cell(v.base, v.digits), num(v.ratio),
              "–" if v.rounds is None else f"{num(v.rounds.low)}–{num(v.rounds.high)}",
              "–" if v.noise is None else f"{v.noise * 100:.0f} %", v.verdict] for v in rows]
    return markdown_table(["phase", "measure", f"{ours} (min–max)", f"{base} (min–max)", "ratio", "per round",
                           "spread", "verdict"], lines, right=[False, False, True, True, True, True, True, False])


def section(result: BenchResult, ours: str, base: str, described: str) -> str:
    """The Markdown section: which build the baseline is, the table, and the phases that got worse."""
    rows = compare(result, ours, base)
    worse = [f"{v.phase} {v.measure} ({num(v.ratio)})" for v in rows if v.verdict == HIGHER]
    return "\n".join([
        f"## {ours} against {base}", "",
        f"- {base}: {described}",
        f"- ratio: {ours}'s median over {base}'s (below 1: faster, or less); per round: the ratio of the two runs "
        "of each round, which ran back to back; spread: the larger (max − min) / median of the two builds' runs",
        "- verdict: higher or lower beyond the noise only when every run of one build lies above every run of "
        "the other; failed or mismatched runs are left out",
        f"- higher beyond the noise: {', '.join(worse) or 'none'}",
        "", table(rows, ours, base) if rows else "no phase has correct runs of both builds",
    ]) + "\n"


def to_json(result: BenchResult, ours: str, base: str, described: str) -> dict[str, Any]:
    return {"ours": ours, "base": base, "described": described,
            "rows": [dataclasses.asdict(v) for v in compare(result, ours, base)]}

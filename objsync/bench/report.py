"""Turn a benchmark result into summaries, ratios, a Markdown report, JSON and an optional chart."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from objsync.bench.peers import variant_of
from objsync.bench.phases import PHASE_TITLES, PHASES, BenchResult, DaemonRecord, RunRecord
from objsync.bench.stats import Spread, rate, ratio, spread

MIB = 1 << 20


@dataclass(frozen=True)
class PhaseSummary:
    """One tool in one phase, over its repeats."""

    phase: str
    tool: str
    wall: Spread
    cpu: Spread
    peak_rss: Spread
    requests: Spread | None
    others_cpu: Spread | None  # CPU seconds other processes used during the runs: contention
    files_per_s: float | None
    mb_per_s: float | None
    runs: int
    failed: int
    mismatched: int
    note: str = ""

    @property
    def ok(self) -> bool:
        return not self.failed and not self.mismatched


@dataclass(frozen=True)
class Ratio:
    """ours / theirs for one phase: below 1 means ours is faster, or uses less."""

    phase: str
    ours: str
    theirs: str
    wall: float | None
    cpu: float | None
    peak_rss: float | None


def summarize(result: BenchResult) -> list[PhaseSummary]:
    """Summaries in phase order, then in the order the tools were given."""
    out = []
    for phase in PHASES:
        for tool in result.tools:
            runs = [r for r in result.runs if r.phase == phase and r.tool == tool]
            if runs:
                out.append(summarize_runs(runs, result.work[phase].files, result.work[phase].bytes))
    return out


def summarize_runs(runs: Sequence[RunRecord], files: int, nbytes: int) -> PhaseSummary:
    wall = spread(r.wall for r in runs)
    assert wall is not None
    return PhaseSummary(
        phase=runs[0].phase, tool=runs[0].tool, wall=wall, cpu=spread(r.cpu for r in runs),
        peak_rss=spread(r.peak_rss for r in runs), requests=spread(r.requests for r in runs),
        others_cpu=spread(r.others_cpu for r in runs), files_per_s=rate(files, wall.median),
        mb_per_s=rate(nbytes / 1e6, wall.median), runs=len(runs),
        failed=sum(r.rc != 0 for r in runs), mismatched=sum(not r.check.ok for r in runs), note=runs[0].note)


def ratios(summaries: Sequence[PhaseSummary], ours: Sequence[str]) -> list[Ratio]:
    """Each of our tools against each other tool, phase by phase, on the medians."""
    out = []
    for phase in PHASES:
        # A sweep's variants have their own section: here each tool at its defaults only.
        rows = {s.tool: s for s in summaries if s.phase == phase and variant_of(s.tool)[1] is None}
        for mine in ours:
            if mine not in rows:
                continue
            a = rows[mine]
            for name, b in rows.items():
                if name in ours:
                    continue
                out.append(Ratio(phase, mine, name, ratio(a.wall.median, b.wall.median),
                                 ratio(a.cpu.median, b.cpu.median), ratio(a.peak_rss.median, b.peak_rss.median)))
    return out


def best_per_phase(summaries: Sequence[PhaseSummary], by: str = "wall") -> list[PhaseSummary]:
    """The best tool of each phase by median wall (or CPU) time, among those whose runs were all correct."""
    best = []
    for phase in PHASES:
        rows = [s for s in summaries if s.phase == phase and s.ok]
        if rows:
            best.append(min(rows, key=lambda s: getattr(s, by).median))
    return best


# -- text ---------------------------------------------------------------------------


def num(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool] = ()) -> str:
    """A GitHub Markdown table with padded columns; `right[i]` right-aligns column i."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    align = [bool(right[i]) if i < len(right) else False for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        padded = [c.rjust(w) if a else c.ljust(w) for c, w, a in zip(cells, widths, align)]
        return "| " + " | ".join(padded) + " |"

    rule = "| " + " | ".join(("-" * (w - 1) + ":") if a else "-" * w for w, a in zip(widths, align)) + " |"
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def verdict(s: PhaseSummary) -> str:
    if s.ok:
        return f"{s.runs}/{s.runs} ok"
    parts = []
    if s.failed:
        parts.append(f"{s.failed} FAILED")
    if s.mismatched:
        parts.append(f"{s.mismatched} MISMATCH")
    return f"**{', '.join(parts)}** of {s.runs}"


def results_table(summaries: Sequence[PhaseSummary]) -> str:
    headers = ["phase", "tool", "wall s", "min–max", "CPU s", "peak RSS MiB", "requests", "files/s", "MB/s",
               "others' CPU s", "runs"]
    rows = []
    for s in summaries:
        req = None if s.requests is None else s.requests.median
        others = None if s.others_cpu is None else s.others_cpu.median
        tool = f"{s.tool} ({s.note})" if s.note else s.tool
        rows.append([s.phase, tool, num(s.wall.median), f"{num(s.wall.low)}–{num(s.wall.high)}",
                     num(s.cpu.median), num(s.peak_rss.median / MIB, 1), num(req, 0), num(s.files_per_s, 0),
                     num(s.mb_per_s, 1), num(others, 1), verdict(s)])
    return markdown_table(headers, rows, right=[False, False, True, True, True, True, True, True, True, True, False])


def ratio_table(rows: Sequence[Ratio]) -> str:
    peers = list(dict.fromkeys(r.theirs for r in rows))
    lines = []
    for phase in PHASES:
        for ours in dict.fromkeys(r.ours for r in rows if r.phase == phase):
            cells = {r.theirs: r for r in rows if r.phase == phase and r.ours == ours}
            lines.append([phase, ours] + [
                f"{num(cells[p].wall)} (cpu {num(cells[p].cpu)}, rss {num(cells[p].peak_rss)})" if p in cells else "–"
                for p in peers])
    return markdown_table(["phase", "ours", *(f"vs {p}" for p in peers)], lines)


def daemon_table(result: BenchResult, phase: str = "daemon") -> str:
    rows = []
    for d in (d for d in result.daemons if d.phase == phase):
        s = d.stats
        tool = f"{d.tool} r{d.repeat}"
        if s.status != "ok":
            rows.append([tool, s.status, "–", "–", "–", "–", "–", "–", s.reason])
            continue
        ok = "verified" if d.check and d.check.ok else "**MISMATCH**"
        rows.append([tool, "ok", str(s.polls), num(s.pass_seconds, 3), num(s.cpu_per_poll, 3),
                     num(s.requests_per_poll, 1), f"{num(s.rss_first / MIB, 1)} → {num(s.rss_last / MIB, 1)}",
                     num(s.peak_rss / MIB, 1), ok + (f", {s.failed_polls} failed polls" if s.failed_polls else "")])
    return markdown_table(["tool", "status", "polls", "pass s (mean)", "CPU s/poll", "requests/poll",
                           "RSS MiB first → last", "peak RSS MiB", "notes"], rows)


def render_markdown(result: BenchResult, meta: Mapping[str, Any], ours: Sequence[str]) -> str:
    """The whole report: context, the results table, ratios, and the daemon table."""
    summaries = summarize(result)
    p = result.plan
    load = meta.get("load", {})
    bytecode = f", bytecode {meta['bytecode']}" if meta.get("bytecode") else ""
    out = [
        f"# objsync bench: `{p.preset.name}` preset{_latency_title(meta)}, {meta.get('date', '')}",
        "",
        f"- tree: {meta.get('files', 0):,} files, {meta.get('bytes', 0) / MIB:,.1f} MiB, seed {p.seed}; "
        f"bucket seeded in {result.seed_seconds:.1f} s",
        f"- machine: {meta.get('machine', '')}",
        f"- load average (1 min) before each run: {num(load.get('min'))}–{num(load.get('max'))} (it includes "
        f"the previous run); other processes kept {num(load.get('others_cores'))} CPUs busy on average during "
        "the runs",
        f"- target: {meta.get('target', '')}; requests: {meta.get('requests_source', '')}",
        *([f"- latency: {meta['latency']}"] if meta.get("latency") else []),
        f"- objsync: {meta.get('objsync', '')}{bytecode}; peers: "
        f"{', '.join(meta.get('versions', {}).values()) or 'none'}",
        f"- repeats: {p.repeats} per tool{_tool_repeats(p.tool_repeats)}, interleaved; wall is the median with "
        "min–max; CPU (user+system) and peak RSS are summed over each tool's whole process tree",
        f"- every run was checked against the bucket: {meta.get('verify', '')}",
    ]
    if meta.get("source_changed"):
        out.append("- **warning: objsync's source changed while the benchmark ran; its runs may mix versions**")
    for key, reason in meta.get("missing", {}).items():
        out.append(f"- {key} not run: {reason}")
    out += [f"- {n}" for n in result.notes]
    out += ["", "## Results", "", results_table(summaries)]
    ours_present = [t for t in ours if t in result.tools]
    rows = ratios(summaries, ours_present)
    if rows:
        out += ["", "## Ratios (ours / peer: below 1 means objsync is faster or uses less)", "", ratio_table(rows)]
    if any(d.phase == "daemon" for d in result.daemons):
        out += ["", f"## {PHASE_TITLES['daemon']}", "", daemon_table(result)]
    return "\n".join(out) + "\n"


def _latency_title(meta: Mapping[str, Any]) -> str:
    rtt = meta.get("latency_rtt")
    return f", {rtt * 1000:g} ms latency" if rtt else ""


def _tool_repeats(pairs: Sequence[tuple[str, int]]) -> str:
    return "".join(f" ({name}: {n})" for name, n in pairs)


def to_json(result: BenchResult, meta: Mapping[str, Any], ours: Sequence[str]) -> dict[str, Any]:
    summaries = summarize(result)
    return {
        "meta": dict(meta),
        "plan": dataclasses.asdict(result.plan),
        "work": {k: dataclasses.asdict(v) for k, v in result.work.items()},
        "summaries": [dataclasses.asdict(s) for s in summaries],
        "ratios": [dataclasses.asdict(r) for r in ratios(summaries, [t for t in ours if t in result.tools])],
        "daemons": [dataclasses.asdict(d) for d in result.daemons],
        "runs": [dataclasses.asdict(r) for r in result.runs],
    }


def write_json(doc: Mapping[str, Any], path: Path) -> None:
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")


def progress_line(event: object) -> str:
    """One progress line for a text event or a finished run; failures and mismatches are shouted."""
    if isinstance(event, RunRecord):
        return describe(event)
    if isinstance(event, DaemonRecord):
        return describe_daemon(event)
    return str(event)


def describe(r: RunRecord) -> str:
    """One progress line; a failed or mismatched run is shouted, with the first problems."""
    req = "n/a" if r.requests is None else f"{r.requests:,}"
    line = (f"{r.phase:<11} r{r.repeat} {r.tool:<16} {r.wall:8.2f} s  cpu {r.cpu:7.2f} s  "
            f"rss {r.peak_rss / 2**20:7.1f} MiB  req {req:>7}  server cpu {num(r.server_cpu)} s  "
            f"others {num(r.others_cpu)} s")
    if r.ok:
        return f"{line}  verified ({r.check.mode})"
    parts = []
    if r.rc != 0:
        parts.append(f"FAILED (exit {r.rc}): {r.error}")
    if not r.check.ok:
        parts.append(f"MISMATCH ({r.check.mode}): {'; '.join(r.check.problems[:5])}")
    return f"{line}  !!! {' / '.join(parts)}"


def describe_daemon(d: DaemonRecord) -> str:
    s = d.stats
    if s.status != "ok":
        return f"{d.phase:<11} r{d.repeat} {d.tool:<16} {s.status.upper()}: {s.reason}"
    checked = "verified" if d.check and d.check.ok else f"!!! MISMATCH: {d.check.problems[:3] if d.check else ''}"
    req = "n/a" if s.requests_per_poll is None else f"{s.requests_per_poll:.1f}"
    return (f"{d.phase:<11} r{d.repeat} {d.tool:<16} {s.polls} polls: cpu {s.cpu_per_poll:.3f} s/poll, "
            f"req {req}/poll, rss {s.rss_first / 2**20:.1f} -> {s.rss_last / 2**20:.1f} MiB "
            f"(peak {s.peak_rss / 2**20:.1f})  {checked}")

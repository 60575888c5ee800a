"""The concurrency sweep: every tool at its defaults and at a few in-flight counts, and each one's best.

A variant is the same tool with its own concurrency setting, named `TOOL@N`, run in the same
interleaved rounds as the defaults. objinsync has no such setting (five download workers, fixed),
so it runs at its defaults only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from objsync.bench.peers import BASELINE, VARIANT_SEP, Tool, variant_of
from objsync.bench.report import PhaseSummary, markdown_table, num
from objsync.bench.stats import ratio

# The in-flight default of each peer, so that a sweep does not run it twice under two names.
DEFAULTS = {"s5cmd": 256, "aws": 10, "rclone": 4}
_OBJSYNC_FLAG = "--threads N (downloads in flight per running batch)"
FLAGS = {"objsync": _OBJSYNC_FLAG, BASELINE: _OBJSYNC_FLAG, "s5cmd": "--numworkers N",
         "aws": "s3.max_concurrent_requests = N (in AWS_CONFIG_FILE)", "rclone": "--transfers N --checkers N",
         "objinsync": "none: 5 download workers, fixed"}
# Cold wall time over the fastest peer's: at everyone's defaults, and at everyone's best setting.
COLD_GOALS = (("defaults", 0.6), ("best", 0.8))
SYNC_PHASES = ("cold", "noop", "incremental")  # the daemon phase's peer rows are stand-ins, not swept


def variant(tool: Tool, n: int, config_dir: Path) -> Tool | None:
    """`tool` with n requests in flight, or None when it has no such setting or n is its default."""
    if tool.concurrency is not None or DEFAULTS.get(tool.kind) == n:
        return None
    name, flag = f"{tool.name}{VARIANT_SEP}{n}", str(n)
    if tool.kind == "objsync":
        return dataclasses.replace(tool, name=name, extra=(*tool.extra, "--threads", flag), concurrency=n)
    if tool.kind == "s5cmd":  # a global flag: it goes before the subcommand, with the executable
        return dataclasses.replace(tool, name=name, exe=(*tool.exe, "--numworkers", flag), concurrency=n)
    if tool.kind == "rclone":
        return dataclasses.replace(tool, name=name, extra=(*tool.extra, "--transfers", flag, "--checkers", flag),
                                   concurrency=n)
    if tool.kind == "aws":  # the CLI takes it from its config file only
        config_dir.mkdir(parents=True, exist_ok=True)
        config = config_dir / f"aws-{n}.ini"
        config.write_text(f"[default]\ns3 =\n    max_concurrent_requests = {n}\n")
        return dataclasses.replace(tool, name=name, env=(*tool.env, ("AWS_CONFIG_FILE", str(config))),
                                   concurrency=n)
    return None


def with_variants(tools: Sequence[Tool], counts: Sequence[int], config_dir: Path) -> list[Tool]:
    """Each tool at its defaults, followed by its variants."""
    out = []
    for tool in tools:
        out.append(tool)
        out += [v for n in counts if (v := variant(tool, n, config_dir)) is not None]
    return out


@dataclass(frozen=True)
class Pick:
    """One tool in one phase: its run at the defaults and its fastest correct setting (maybe the same)."""

    phase: str
    family: str
    default: PhaseSummary | None
    best: PhaseSummary
    setting: int | None  # None: the defaults were the fastest


def picks(summaries: Sequence[PhaseSummary]) -> list[Pick]:
    """Per phase and tool, the defaults and the setting with the lowest median wall; only correct runs count."""
    out = []
    for phase in SYNC_PHASES:
        by_family: dict[str, list[PhaseSummary]] = {}
        for s in summaries:
            if s.phase == phase:
                by_family.setdefault(variant_of(s.tool)[0], []).append(s)
        for family, rows in by_family.items():
            good = [s for s in rows if s.ok]
            if not good:
                continue
            best = min(good, key=lambda s: s.wall.median)
            default = next((s for s in rows if variant_of(s.tool)[1] is None and s.ok), None)
            out.append(Pick(phase, family, default, best, variant_of(best.tool)[1]))
    return out


def _wall(p: Pick | None, at: str) -> float | None:
    s = None if p is None else p.best if at == "best" else p.default
    return s.wall.median if s else None


def fastest_peer(rows: Sequence[Pick], ours: Sequence[str], at: str) -> Pick | None:
    """The peer with the lowest median wall, at the defaults or at its best."""
    peers = [p for p in rows if p.family not in ours and _wall(p, at) is not None]
    return min(peers, key=lambda p: _wall(p, at), default=None)


def _cell(s: PhaseSummary | None) -> str:
    return "–" if s is None else f"{num(s.wall.median)} ({num(s.wall.low)}–{num(s.wall.high)})"


def goal_lines(rows: Sequence[Pick], ours: Sequence[str]) -> list[str]:
    """Whether each of our builds' cold wall time meets each goal against the fastest peer."""
    cold = [p for p in rows if p.phase == "cold"]
    lines = []
    for mine in (p for p in cold if p.family in ours):
        for at, goal in COLD_GOALS:
            peer = fastest_peer(cold, ours, at)
            r = ratio(_wall(mine, at), _wall(peer, at))
            if peer is None or r is None:
                lines.append(f"- {mine.family}, cold at {at}: no correct runs to compare")
                continue
            verdict = "met" if r <= goal else "NOT met"
            lines.append(f"- {mine.family}, cold at {at}: {num(_wall(mine, at))} s against {peer.family} "
                         f"{num(_wall(peer, at))} s = {num(r)} (goal ≤ {goal:g}): {verdict}")
    return lines


def section(summaries: Sequence[PhaseSummary], ours: Sequence[str] = ("objsync",)) -> str:
    """The Markdown section: each tool at its defaults and at its best, with the ratios to the fastest peer."""
    rows = picks(summaries)
    table = []
    for p in rows:
        setting = "defaults" if p.setting is None else f"{p.setting} in flight"
        phase = [q for q in rows if q.phase == p.phase]
        cells = [num(ratio(_wall(p, at), _wall(fastest_peer(phase, ours, at), at))) if p.family in ours else "–"
                 for at in ("defaults", "best")]
        table.append([p.phase, p.family, _cell(p.default), _cell(p.best), setting, *cells])
    lines = ["## Concurrency: each tool at its defaults and at its best", "",
             "Wall seconds, median (min–max). Best: the setting with the lowest median among the tool's correct "
             "runs, the defaults included. The ratios divide an objsync build's median by the fastest peer's, both "
             "at their defaults, then both at their best (below 1: faster).", "",
             markdown_table(["phase", "tool", "defaults", "best", "best setting", "vs fastest peer, defaults",
                             "vs fastest peer, best"], table, right=[False, False, True, True, False, True, True]),
             "", "Settings swept, per tool:", ""]
    lines += [f"- {family}: {FLAGS.get(family, 'n/a')}" for family in dict.fromkeys(p.family for p in rows)]
    lines += ["", "Goals:", "", *goal_lines(rows, ours)]
    return "\n".join(lines) + "\n"

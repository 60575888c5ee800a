"""Memory per object: two benchmark results of the same tools at two tree sizes (dags10k and dags100k).

`python -m objsync.bench.scaling SMALL.json LARGE.json` prints, for each tool and phase, the peak
RSS at both sizes, the KiB each extra object cost, and each peak at the larger size against
objinsync's.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from objsync.bench.peers import BASELINE, variant_of
from objsync.bench.report import markdown_table, num
from objsync.bench.stats import ratio

KIB, MIB = 1 << 10, 1 << 20
PER_OBJECT_GOAL = 0.3  # KiB per extra object
THEIRS = "objinsync"
OURS = ("objsync", BASELINE)
PHASES = ("cold", "noop", "incremental", "list-daemon")


@dataclass(frozen=True)
class Growth:
    """One tool in one phase at two tree sizes: median peak RSS in bytes."""

    phase: str
    tool: str
    files: tuple[int, int]
    peak_rss: tuple[float, float]

    @property
    def kib_per_object(self) -> float | None:
        extra = self.files[1] - self.files[0]
        return (self.peak_rss[1] - self.peak_rss[0]) / extra / KIB if extra > 0 else None


def peaks(doc: Mapping[str, Any]) -> dict[tuple[str, str], float]:
    """Median peak RSS in bytes by (phase, tool): one-shot runs at their defaults, and LIST-mode daemons."""
    out = {(s["phase"], s["tool"]): float(s["peak_rss"]["median"]) for s in doc.get("summaries", ())
           if not s["failed"] and not s["mismatched"] and variant_of(s["tool"])[1] is None}
    for row in doc.get("list_daemon", ()):
        if row.get("peak_rss"):
            out[("list-daemon", row["tool"])] = float(row["peak_rss"]["median"]) * MIB  # stored in MiB
    return out


def growth(small: Mapping[str, Any], large: Mapping[str, Any]) -> list[Growth]:
    """Every (phase, tool) both results have correct runs of, in phase order."""
    files = (int(small["meta"]["files"]), int(large["meta"]["files"]))
    a, b = peaks(small), peaks(large)
    keys = sorted(a.keys() & b.keys(), key=lambda k: (PHASES.index(k[0]) if k[0] in PHASES else 99, k[1]))
    return [Growth(phase, tool, files, (a[(phase, tool)], b[(phase, tool)])) for phase, tool in keys]


def _verdict(value: float | None, goal: float) -> str:
    return "–" if value is None else "met" if value <= goal else "NOT met"


def render(rows: Sequence[Growth], names: tuple[str, str]) -> str:
    """A Markdown table with the goals: ≤ 0.3 KiB per extra object, and a peak no larger than objinsync's."""
    theirs = {g.phase: g.peak_rss[1] for g in rows if g.tool == THEIRS}
    table = []
    for g in rows:
        per = g.kib_per_object
        vs = ratio(g.peak_rss[1], theirs.get(g.phase)) if g.tool != THEIRS else None
        ours = g.tool in OURS  # the goals are objsync's; the peers' columns are there to compare
        table.append([g.phase, g.tool, num(g.peak_rss[0] / MIB, 1), num(g.peak_rss[1] / MIB, 1), num(per, 2),
                      _verdict(per, PER_OBJECT_GOAL) if ours else "", num(vs), _verdict(vs, 1.0) if ours else ""])
    files = rows[0].files if rows else (0, 0)
    return "\n".join([
        f"## Memory from {files[0]:,} to {files[1]:,} objects ({names[0]} → {names[1]})", "",
        "Median peak RSS of each tool's process tree. Goals: at most "
        f"{PER_OBJECT_GOAL:g} KiB per extra object, and a peak at {files[1]:,} objects no larger than {THEIRS}'s.", "",
        markdown_table(["phase", "tool", f"peak MiB at {files[0]:,}", f"peak MiB at {files[1]:,}",
                        "KiB per extra object", "goal", f"peak vs {THEIRS}", "goal"], table,
                       right=[False, False, True, True, True, False, True, False]),
    ]) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m objsync.bench.scaling", description=__doc__.splitlines()[0])
    p.add_argument("small", type=Path, help="the result JSON of the smaller tree")
    p.add_argument("large", type=Path, help="the result JSON of the larger tree")
    args = p.parse_args(argv)
    small, large = (json.loads(path.read_text()) for path in (args.small, args.large))
    sys.stdout.write(render(growth(small, large), (args.small.stem, args.large.stem)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

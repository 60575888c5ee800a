"""The chart of a benchmark: median wall and CPU seconds per phase and tool, as a PNG."""

from __future__ import annotations

from pathlib import Path

from objsync.bench import report
from objsync.bench.phases import PHASE_TITLES, PHASES, BenchResult


def write_chart(result: BenchResult, path: Path) -> bool:
    """Median wall and CPU seconds per phase and tool as a PNG; False when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    summaries = report.summarize(result)
    # The daemon phase is left out: objsync's figure there is per poll, the peers' is one whole sync.
    phases = [ph for ph in PHASES if ph != "daemon" and any(s.phase == ph for s in summaries)]
    if not phases:
        return False
    fig, axes = plt.subplots(1, len(phases), figsize=(4.2 * len(phases), 4.2), squeeze=False)
    for ax, phase in zip(axes[0], phases):
        rows = [s for s in summaries if s.phase == phase]
        xs = range(len(rows))
        walls = [s.wall.median for s in rows]
        errors = [[s.wall.median - s.wall.low for s in rows], [s.wall.high - s.wall.median for s in rows]]
        ax.bar([x - 0.2 for x in xs], walls, 0.4, yerr=errors, capsize=3, label="wall s")
        ax.bar([x + 0.2 for x in xs], [s.cpu.median for s in rows], 0.4, label="CPU s", alpha=0.6)
        ax.set_xticks(list(xs), [s.tool for s in rows], rotation=30, ha="right")
        ax.set_title(PHASE_TITLES[phase].split(" (")[0], fontsize=10)
        ax.set_ylabel("seconds")
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].legend()
    fig.suptitle(f"objsync bench, preset {result.plan.preset.name} (median of repeats, min–max bars)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True

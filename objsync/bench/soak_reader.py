"""The soak test's reader: imports each repo's DAG and helper afresh, one forked process per read, as Airflow does.

    python -m objsync.bench.soak_reader DEST OUT REPO...   # until SIGTERM, then its tally goes to OUT as JSON
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import sys
import time
from collections import Counter

from objsync.bench.forked import forked
from objsync.bench.soak import DAG_FILE, helper_module, judge

# per-file: every open goes through LOCAL_DIR/<repo>, the link, as Airflow's own imports do.
# resolved: the link is resolved once per read, and both files come from that tree.
STYLES = ("per-file", "resolved")
MAX_ANOMALIES = 1000  # mixed reads are kept to be explained; a bug would bring far more


def read(dest: str, repo: str, style: str) -> dict:
    """Import the repo's DAG, which imports its helper: [GEN, GEN_END] of each, or the error."""
    sys.dont_write_bytecode = True  # a reader's __pycache__ would be a local change in the tree
    base = os.path.join(dest, repo)
    if style == "resolved":
        base = os.path.realpath(base)
    sys.path.insert(0, base)
    try:
        spec = importlib.util.spec_from_file_location(f"soak_dag_{repo}", os.path.join(base, DAG_FILE))
        dag = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(dag)
        helper = sys.modules[helper_module(repo)]
    except BaseException as exc:  # noqa: BLE001 - any failure to import is what the reader records
        return {"error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"dag": [getattr(dag, "GEN", None), getattr(dag, "GEN_END", None)],
            "helper": [getattr(helper, "GEN", None), getattr(helper, "GEN_END", None)]}


def read_forked(dest: str, repo: str, style: str) -> dict:
    """`read` in a freshly forked child, so that no module is cached from an earlier read."""
    seen = forked(read, dest, repo, style)
    return seen if isinstance(seen, dict) else {"error": "the read process died"}


class Tally:
    """Reads by style and repo: verdicts, generations seen, and the first anomalies in full."""

    def __init__(self) -> None:
        self.verdicts: dict[str, dict[str, Counter]] = {s: {} for s in STYLES}
        self.gens: dict[str, dict[str, set[int]]] = {s: {} for s in STYLES}
        self.anomalies: list[dict] = []
        self.dropped = 0

    def add(self, style: str, repo: str, seen: dict) -> None:
        verdict, gen = judge(seen)
        self.verdicts[style].setdefault(repo, Counter())[verdict] += 1
        if gen is not None:
            self.gens[style].setdefault(repo, set()).add(gen)
        elif len(self.anomalies) < MAX_ANOMALIES:
            self.anomalies.append({"t": time.time(), "style": style, "repo": repo, "verdict": verdict, "seen": seen})
        else:
            self.dropped += 1

    def to_json(self) -> dict:
        return {"verdicts": {s: {r: dict(c) for r, c in v.items()} for s, v in self.verdicts.items()},
                "generations": {s: {r: sorted(g) for r, g in v.items()} for s, v in self.gens.items()},
                "anomalies": self.anomalies, "dropped": self.dropped}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dest")
    p.add_argument("out")
    p.add_argument("repos", nargs="+")
    p.add_argument("--pause", type=float, default=0.005, help="seconds between reads (default 0.005)")
    args = p.parse_args(argv)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    tally = Tally()
    i = 0
    while not stopping:
        repo = args.repos[i % len(args.repos)]
        style = STYLES[(i // len(args.repos)) % len(STYLES)]
        i += 1
        tally.add(style, repo, read_forked(args.dest, repo, style))
        time.sleep(args.pause)
    with open(args.out, "w") as fh:
        json.dump(tally.to_json(), fh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

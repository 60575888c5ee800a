"""How long Python takes before objsync does anything: the bare interpreter, and the libraries a pull imports.

    python benchmarks/startup_floor.py [--runs 21] [COMMAND ...]

Runs, interleaved, `python -c pass`, an import of the libraries a `--once` pull loads, and each COMMAND
(a quoted shell command, e.g. "objsync pull --once s3://bucket/dags /tmp/dags"), and prints the median
wall and CPU time of each. A command that fails stops the run with its output.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import time

# What `objsync pull --once` of an unchanged prefix imports besides objsync itself (see -X importtime).
LIBRARIES = ("argparse, dataclasses, hashlib, hmac, json, logging, pathlib, re, sqlite3, threading, typing, "
             "concurrent.futures, diskcache, pycurl, xxhash")


def timed(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU (user + system of the child) seconds of one run."""
    before, started = os.times(), time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True)
    wall, after = time.perf_counter() - started, os.times()
    if proc.returncode != 0:
        raise SystemExit(f"{shlex.join(argv)} failed with status {proc.returncode}:\n{proc.stderr[-2000:]}")
    return wall, (after.children_user - before.children_user) + (after.children_system - before.children_system)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=21)
    p.add_argument("commands", nargs="*", metavar="COMMAND")
    args = p.parse_args()
    runs = {"python -c pass": [sys.executable, "-c", "pass"],
            "python, the libraries imported": [sys.executable, "-c", f"import {LIBRARIES}"]}
    runs |= {c: shlex.split(c) for c in args.commands}
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    for _ in range(args.runs):
        for name, argv in runs.items():
            times[name].append(timed(argv))
    for name, got in times.items():
        walls = sorted(w for w, _ in got)
        print(f"{statistics.median(walls) * 1000:6.0f} ms wall ({walls[0] * 1000:.0f}–{walls[-1] * 1000:.0f}), "
              f"{statistics.median(c for _, c in got) * 1000:4.0f} ms CPU  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

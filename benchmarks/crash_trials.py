"""kill -9 trials: cold, incremental and daemon passes are killed at random moments, then checked.

After each kill: no file in the folder is partial (each holds its object's bytes, old or new), the
cache claims no file whose bytes differ, and the next `objsync pull --once` removes the leftover
temp files and converges to an exact mirror. Starts its own SeaweedFS on loopback.

    python benchmarks/crash_trials.py                  # 200 cold/incremental trials and 20 daemon trials
    python benchmarks/crash_trials.py --trials 40 --daemon-trials 4 --files 100
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from objsync.bench.crash import Bucket, TrialResult, check, mutate, run_trial, time_cold_pass
from objsync.bench.seaweed import SeaweedFS
from objsync.paths import STATE_DIR


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=200, help="cold and incremental trials, alternating (default 200)")
    p.add_argument("--daemon-trials", type=int, default=20, help="trials that kill a running daemon (default 20)")
    p.add_argument("--files", type=int, default=200, help="objects under the prefix (default 200)")
    p.add_argument("--workers", type=int, default=None,
                   help="passed to objsync pull --workers (default: the pull's own default for this machine)")
    p.add_argument("--seed", type=int, default=20261125)
    p.add_argument("--json", metavar="FILE", help="also write every trial's result to FILE")
    return p.parse_args(argv)


def mirror(dest: Path) -> dict[str, bytes]:
    """The folder's files by relative path, objsync's own folder left out."""
    return {p.relative_to(dest).as_posix(): p.read_bytes() for p in dest.rglob("*")
            if p.is_file() and p.relative_to(dest).parts[0] != STATE_DIR}


def recover(argv: list[str], env: dict[str, str], dest: Path, bucket: Bucket, identity: str) -> list[str]:
    """Run one clean pass after a kill; what is still wrong afterwards (empty when it converged)."""
    run = subprocess.run([sys.executable, "-m", "objsync", *argv], env=env, capture_output=True, text=True)
    wrong = [] if run.returncode == 0 else [f"recovery pass exited {run.returncode}: {run.stderr[-300:]}"]
    if mirror(dest) != bucket.current:
        wrong.append("the folder is not an exact mirror after the recovery pass")
    leftovers = list((dest / STATE_DIR / "tmp").iterdir())
    if leftovers:
        wrong.append(f"{len(leftovers)} temp files left after the recovery pass")
    return wrong + check(dest, bucket, identity)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="objsync-crash-"))
    server = SeaweedFS(work / "seaweedfs").start()
    try:
        return run_all(args, rng, work, server)
    finally:
        server.stop(timeout=1.0)
        shutil.rmtree(work, ignore_errors=True)


def run_all(args: argparse.Namespace, rng: random.Random, work: Path, server: SeaweedFS) -> int:
    import boto3

    client = boto3.client("s3", endpoint_url=server.endpoint_url, aws_access_key_id=server.access_key,
                          aws_secret_access_key=server.secret_key, region_name="us-east-1")
    client.create_bucket(Bucket="crash")
    bucket = Bucket(client, "crash", "c/")
    with ThreadPoolExecutor(16) as ex:
        list(ex.map(lambda i: bucket.put(f"r{i % 6}/d{i % 11}/f{i}.py", os.urandom(rng.randint(200, 60_000))),
                    range(args.files)))
    dest = work / "d"
    src = "s3://crash/c"
    identity = f"{server.endpoint_url}|crash|c/"
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_PROFILE", "AWS_SESSION_TOKEN")} | server.env()
    shape = ["--threads", "4"] + (["--workers", str(args.workers)] if args.workers is not None else [])
    once = ["pull", "--once", *shape, src, str(dest)]
    daemon = ["pull", "-i", "300ms", "-s", "off", *shape, src, str(dest)]

    first_file, full_pass = time_cold_pass(once, env, dest)
    mutate(bucket, rng)
    incremental_pass = time_cold_pass(once, env, dest, cold=False)[1]
    # Most of a short cold pass is start-up, so its kills start a little before the first file lands.
    # An incremental pass is too short to aim at: its kills land anywhere from start-up to its end.
    earliest = 0.6 * first_file
    window = {"cold": (earliest, full_pass), "incremental": (0.05, incremental_pass),
              "daemon": (earliest, 3 * full_pass)}
    print(f"{args.files} objects; a cold pass writes its first file after {first_file:.2f}s and ends after "
          f"{full_pass:.2f}s, an incremental pass ends after {incremental_pass:.2f}s; kills land in "
          + ", ".join(f"{mode} {lo:.2f}-{hi:.2f}s" for mode, (lo, hi) in window.items())
          + f"; half the cold kills land 0-{full_pass - first_file:.2f}s after the first file", flush=True)

    plan = ["cold" if i % 2 == 0 else "incremental" for i in range(args.trials)] + ["daemon"] * args.daemon_trials
    results: list[tuple[TrialResult, int, list[str]]] = []
    for n, mode in enumerate(plan, 1):
        if mode == "cold":
            shutil.rmtree(dest, ignore_errors=True)
        else:
            mutate(bucket, rng)
        if mode == "cold" and n % 4 == 1:  # half the cold kills are timed from the first file on
            trial = run_trial(once, env, dest, bucket, identity, rng, mode, min_delay=0.0,
                              max_delay=full_pass - first_file, after_first_file=True)
        else:
            trial = run_trial(daemon if mode == "daemon" else once, env, dest, bucket, identity, rng, mode,
                              min_delay=window[mode][0], max_delay=window[mode][1])
        temps = len(list((dest / STATE_DIR / "tmp").iterdir())) if (dest / STATE_DIR / "tmp").exists() else 0
        wrong = list(trial.violations) + recover(once, env, dest, bucket, identity)
        results.append((trial, temps, wrong))
        if wrong:
            print(f"trial {n} ({mode}, killed after {trial.killed_after:.2f}s): " + "; ".join(wrong), flush=True)
        elif n % 20 == 0:
            print(f"{n}/{len(plan)} trials done", flush=True)

    report(results, len(bucket.current))
    if args.json:
        Path(args.json).write_text(json.dumps([
            {"mode": t.mode, "killed_after": t.killed_after, "files_present": t.files_present,
             "temp_files_left": temps, "problems": wrong} for t, temps, wrong in results], indent=1))
    return 1 if any(wrong for _, _, wrong in results) else 0


def report(results: list[tuple[TrialResult, int, list[str]]], n_objects: int) -> None:
    """Print one row per mode: trials, where the kills landed, what they left, and what was wrong."""
    rows: dict[str, Counter] = defaultdict(Counter)
    for trial, temps, wrong in results:
        row = rows[trial.mode]
        row["trials"] += 1
        row["running"] += trial.was_running
        row["empty"] += trial.files_present == 0
        row["partway"] += 0 < trial.files_present < n_objects
        row["temps"] += temps > 0
        row["problems"] += bool(wrong)
    print()
    header = ("mode", "trials", "killed while running", "no file yet", "part of the files", "temp files left",
              "problems")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(" --- " for _ in header) + "|")
    for mode, row in rows.items():
        cold = mode == "cold"  # only a cold pass starts from an empty folder
        cells = (mode, row["trials"], row["running"], row["empty"] if cold else "-", row["partway"] if cold else "-",
                 row["temps"], row["problems"])
        print("| " + " | ".join(str(c) for c in cells) + " |")
    total = sum(row["trials"] for row in rows.values())
    bad = sum(row["problems"] for row in rows.values())
    print(f"\n{total} kill -9 trials over {n_objects} objects; {bad} with a partial file, a cache entry "
          f"that lies, temp files left after the next pass, or no exact mirror after one clean pass")


if __name__ == "__main__":
    raise SystemExit(main())

"""Soak under load: two repos push every 2 s while `objsync pull --atomic`, kill -9'd about once a minute, mirrors them.

The daemon's requests go through a proxy that faults about 10 % of them; pushes go straight to the server. A
reader imports each repo's DAG and its helper afresh all along, as Airflow's parser does, and must never see two
generations at once or a partial file. Starts its own SeaweedFS on loopback.

    python benchmarks/soak.py --minutes 30
    python benchmarks/soak.py --minutes 3 --json soak.json     # the CI form
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from objsync.bench.context import git_revision, machine
from objsync.bench.seaweed import SeaweedFS
from objsync.bench.soak import (DAG_FILE, file_gens, folder_files, growth, helper_module, judge, leftovers,
                                near_a_kill, percentile, render, visibility)
from objsync.bench.soak_daemon import Sampler, Supervisor
from objsync.bench.soak_report import checks, summary

ROOT = Path(__file__).resolve().parent.parent
REPOS = ("alpha", "beta")
BUCKET, PREFIX = "soak", "dags"
MIB = 1 << 20


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=30.0, help="how long the repos push (default 30)")
    p.add_argument("--push-every", type=float, default=2.0, help="seconds between pushes of each repo (default 2)")
    p.add_argument("--kill-every", type=float, default=60.0,
                   help="mean seconds between kill -9s of the daemon, drawn from 0.5-1.5 times it (default 60)")
    p.add_argument("--fault-rate", type=float, default=0.1, help="share of the daemon's requests faulted (0.1)")
    p.add_argument("--interval", default="1s", help="the daemon's --interval (default 1s)")
    p.add_argument("--keep-snapshots", type=float, default=20.0, help="the daemon's --keep-snapshots, s (20)")
    p.add_argument("--rescan-every", type=float, default=15.0, help="the daemon's --rescan-every, s (15)")
    p.add_argument("--warmup", type=float, default=40.0,
                   help="seconds of each daemon life left out of RSS and fds (40; its first fault adds the boto3 client)")
    p.add_argument("--max-rss-growth", type=float, default=5.0, help="MiB of RSS growth that fails the run (5)")
    p.add_argument("--max-fd-growth", type=float, default=4.0,
                   help="open fds of growth that fail the run (4; S3 connections come and go by a few)")
    p.add_argument("--seed", type=int, default=20261130)
    p.add_argument("--json", metavar="FILE", help="also write the figures and checks to FILE")
    p.add_argument("--keep-work", action="store_true", help="keep the work folder (logs, the DAG folder)")
    return p.parse_args(argv)


def fault_proxy_class():
    """tests/faultproxy.py's FaultProxy; tests/ is not a package on sys.path."""
    spec = importlib.util.spec_from_file_location("faultproxy", ROOT / "tests" / "faultproxy.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["faultproxy"] = module
    spec.loader.exec_module(module)
    return module.FaultProxy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Pusher(threading.Thread):
    """Writes generation n into both files of a repo's workflow/ folder and runs `objsync push dev`, every few s."""

    def __init__(self, repo: str, root: Path, env: dict[str, str], every: float, offset: float) -> None:
        super().__init__(name=f"push-{repo}", daemon=True)
        self.repo, self.root, self.env, self.every, self.offset = repo, root / repo, env, every, offset
        self.gen = 0
        self.done: list[tuple[int, float]] = []  # (generation, when its push returned) of good pushes
        self.failed: list[str] = []
        self.halt = threading.Event()

    def push(self) -> bool:
        self.gen += 1
        for rel, data in render(self.repo, self.gen).items():
            path = self.root / "workflow" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        try:
            run = subprocess.run([sys.executable, "-m", "objsync", "push", "dev", "--repo", self.repo, "--log-level",
                                  "warning"], cwd=self.root, env=self.env, capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            self.failed.append(f"generation {self.gen}: still running after 120 s")
            return False
        if run.returncode != 0:
            self.failed.append(f"generation {self.gen}: exit {run.returncode}: {run.stderr.strip()[-300:]}")
            return False
        self.done.append((self.gen, time.monotonic()))
        return True

    def run(self) -> None:
        due = time.monotonic() + self.offset
        while not self.halt.wait(max(0.0, due - time.monotonic())):
            self.push()
            due = max(due + self.every, time.monotonic())


class Watcher(threading.Thread):
    """Notes each tree a repo's link shows, when it first shows it, and checks that both files in it agree."""

    def __init__(self, dest: Path) -> None:
        super().__init__(name="watcher", daemon=True)
        self.dest = dest
        self.shown: dict[str, list[tuple[float, int]]] = {r: [] for r in REPOS}
        self.bad: list[dict] = []
        self.halt = threading.Event()

    def run(self) -> None:
        last: dict[str, str] = {}
        while not self.halt.wait(0.01):
            for repo in REPOS:
                try:
                    target = os.readlink(self.dest / repo)
                    if target == last.get(repo):
                        continue
                    t = time.monotonic()
                    tree = self.dest / target
                    seen = {"dag": file_gens((tree / DAG_FILE).read_bytes()),
                            "helper": file_gens((tree / f"{helper_module(repo)}.py").read_bytes())}
                except OSError:
                    continue
                last[repo] = target
                verdict, gen = judge(seen)
                if gen is None:
                    self.bad.append({"repo": repo, "tree": target, "verdict": verdict, "seen": seen})
                else:
                    self.shown[repo].append((t, gen))

    def generation(self, repo: str) -> int:
        return self.shown[repo][-1][1] if self.shown[repo] else 0


def bucket_files(client) -> dict[str, bytes]:
    """The prefix's objects by path below it, objsync's own manifests and history left out."""
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=PREFIX + "/"):
        for o in page.get("Contents", []):
            rel = o["Key"][len(PREFIX) + 1:]
            if not rel.startswith(".objsync/"):
                out[rel] = client.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()
    return out


def wait_until(what, timeout: float, step: float = 0.5) -> float | None:
    """Seconds until what() held, or None after `timeout`."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if what():
            return time.monotonic() - start
        time.sleep(step)
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="objsync-soak-"))
    server = SeaweedFS(work / "seaweedfs").start()
    host, port = server.endpoint_url.rsplit("//", 1)[1].split(":")
    proxy = fault_proxy_class()((host, int(port)), rate=args.fault_rate, seed=args.seed, stall_seconds=3.0)
    try:
        result = soak(args, work, server, proxy)
    finally:
        proxy.close()
        server.stop(timeout=1.0)
        if args.keep_work:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    result["checks"] = checks(result, args)
    print(summary(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0 if all(c["ok"] for c in result["checks"].values()) else 1


def soak(args: argparse.Namespace, work: Path, server: SeaweedFS, proxy) -> dict:
    import boto3

    client = boto3.client("s3", endpoint_url=server.endpoint_url, aws_access_key_id=server.access_key,
                          aws_secret_access_key=server.secret_key, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    base = {k: v for k, v in os.environ.items() if k not in ("AWS_PROFILE", "AWS_SESSION_TOKEN")} | server.env()
    pushers = [Pusher(r, work / "src", base | {"OBJSYNC_ENV_DEV_URL": f"s3://{BUCKET}/{PREFIX}"}, args.push_every,
                      offset=i * args.push_every / len(REPOS)) for i, r in enumerate(REPOS)]
    for p in pushers:
        if not p.push():
            raise SystemExit(f"the first push of {p.repo} failed: {p.failed[-1]}")
    dest, status = work / "dags", free_port()
    daemon = ["pull", f"s3://{BUCKET}/{PREFIX}", str(dest), "--atomic", "--interval", args.interval,
              "--keep-snapshots", f"{args.keep_snapshots}s", "--rescan-every", f"{args.rescan_every}s",
              "--endpoint-url", proxy.url, "--connect-timeout", "2s", "--read-timeout", "2s",
              "--exclude", "**/__pycache__/**", "-s", f"127.0.0.1:{status}"]
    sup = Supervisor(daemon, base, work / "daemon.log", random.Random(args.seed), args.kill_every).start()
    reader: subprocess.Popen | None = None
    try:
        watcher = Watcher(dest)
        watcher.start()
        if wait_until(lambda: all(watcher.generation(r) >= 1 for r in REPOS), 120) is None:
            raise SystemExit(f"the daemon never showed the first push; see {work / 'daemon.log'}")
        with open(work / "reader.err", "wb") as err:
            reader = subprocess.Popen([sys.executable, "-m", "objsync.bench.soak_reader", str(dest),
                                       str(work / "reads.json"), *REPOS], env=base, stderr=err)
        return run_load(args, work, client, proxy, pushers, sup, watcher, reader, daemon, status)
    finally:  # whatever went wrong, no push, daemon or reader outlives the run
        for p in pushers:
            p.halt.set()
        if reader is not None and reader.poll() is None:
            reader.kill()
            reader.wait()
        sup.terminate()


def run_load(args: argparse.Namespace, work: Path, client, proxy, pushers: list[Pusher], sup: Supervisor,
             watcher: Watcher, reader: subprocess.Popen, daemon: list[str], status: int) -> dict:
    """Push, kill and read for `--minutes`, then stop pushing, let the folder settle, and gather the figures."""
    dest, reads = watcher.dest, work / "reads.json"
    sampler = Sampler(sup, f"http://127.0.0.1:{status}/metrics").start()
    started = time.monotonic()
    for p in pushers:
        p.start()
    end = started + args.minutes * 60
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(30.0, left))
        print(f"{(time.monotonic() - started) / 60:5.1f} min: pushes "
              + ", ".join(f"{p.repo} {len(p.done)}" for p in pushers)
              + "; folder at " + ", ".join(f"{r} {watcher.generation(r)}" for r in REPOS)
              + f"; {len(sup.kills)} kills; {sum(proxy.injected.values())} faults", flush=True)
    for p in pushers:
        p.halt.set()
    for p in pushers:
        p.join()
    pushing = time.monotonic() - started
    sup.calm()
    bucket = bucket_files(client)
    converged = wait_until(lambda: folder_files(dest) == bucket, 180)
    last_change = max(shown[-1][0] for shown in watcher.shown.values())
    allowance = args.keep_snapshots + args.rescan_every + 15.0  # one rescan, and a backoff after failed passes
    time.sleep(max(0.0, last_change + allowance + 5.0 - time.monotonic()))
    left = leftovers(dest, allowance, time.time())
    final_equal = folder_files(dest) == bucket_files(client)
    watcher.halt.set()
    reader.send_signal(signal.SIGTERM)
    reader_rc = reader.wait(60)
    sampler.stop()
    stop_rc = sup.terminate()
    tmp_after_stop = sorted(os.listdir(dest / ".objsync" / "tmp"))
    tally = json.loads(reads.read_text()) if reads.exists() else {}
    # The first push of each repo went out before the daemon started; the rest are timed.
    timed = {p.repo: list(zip(p.done[1:], visibility(p.done[1:], watcher.shown[p.repo]))) for p in pushers}
    lags = [lag for pairs in timed.values() for _, lag in pairs]
    known = [lag for lag in lags if lag is not None]
    kills = [at for at, _ in sup.kills]
    restarted = [lag for pairs in timed.values() for (_, done), lag in pairs
                 if lag is not None and near_a_kill(done, lag, kills)]
    calm = [lag for pairs in timed.values() for (_, done), lag in pairs
            if lag is not None and not near_a_kill(done, lag, kills)]
    loaded = [x for x in sampler.samples if x.t <= started + pushing]  # the same load from warm-up to end
    rss, fds = growth(loaded, "rss", args.warmup), growth(loaded, "fds", args.warmup)
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine(),
        "revision": git_revision(ROOT), "args": vars(args), "daemon": daemon,
        "pushing_s": pushing, "converged_after_s": converged, "final_equal": final_equal,
        "pushes": {p.repo: {"ok": len(p.done), "failed": p.failed} for p in pushers},
        "kills": len(sup.kills), "kills_at_s": [round(at - started, 1) for at in kills],
        "kill_ages_s": [round(age, 1) for _, age in sup.kills], "unexpected_exits": sup.unexpected, "stop_rc": stop_rc,
        "passes": dict(sampler.pass_counts()),
        "faults": {"requests": proxy.requests, "injected": dict(proxy.injected)},
        "reader_rc": reader_rc, "reads": tally,
        "trees": {"shown": {r: [g for _, g in s] for r, s in watcher.shown.items()}, "bad": watcher.bad},
        "versions": {p.repo: {"pushed": len(p.done), "shown": len({g for _, g in watcher.shown[p.repo]}),
                              **{style: len(g.get(p.repo, [])) for style, g in tally.get("generations", {}).items()}}
                     for p in pushers},
        "visibility_s": {"n": len(lags), "never": len(lags) - len(known), "median": percentile(known, 0.5),
                         "p99": percentile(known, 0.99), "max": max(known, default=None),
                         "no_restart": {"n": len(calm), "median": percentile(calm, 0.5), "p99": percentile(calm, 0.99),
                                        "max": max(calm, default=None)},
                         "restart": {"n": len(restarted), "median": percentile(restarted, 0.5),
                                     "max": max(restarted, default=None)},
                         "per_push": {r: [[g, None if lag is None else round(lag, 3)] for (g, _), lag in pairs]
                                      for r, pairs in timed.items()}},
        "rss_mib": None if rss is None else {"warm": rss.warm / MIB, "end": rss.end / MIB, "growth": rss.growth / MIB,
                                             "worst_life": None if rss.worst_life is None else rss.worst_life / MIB,
                                             "lives": rss.lives},
        "fds": None if fds is None else vars(fds),
        "samples": [[round(x.t - started, 1), x.life, round(x.age, 1), round(x.rss / MIB, 2), x.fds]
                    for x in sampler.samples],  # seconds into the load, life, its age, RSS MiB, fds
        "leftovers": {"tmp": left.tmp, "tmp_after_stop": tmp_after_stop, "current": left.current,
                      "recent": left.recent, "stale": left.stale},
    }


if __name__ == "__main__":
    raise SystemExit(main())

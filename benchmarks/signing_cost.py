"""What signed versions cost: push and pull of a preset tree, signed and unsigned, in one interleaved run.

Each round pushes both ways (cold into a new prefix, then a no-change re-push), then pulls both ways:
a cold `pull --once`, a restart no-op, and a daemon's quiet polls. The order flips every round, so a
slow spell of the machine hits both. Starts its own SeaweedFS on loopback; exits 1 if a run fails.

    python benchmarks/signing_cost.py --json signing.json --out benchmarks/results/signing-large.md
    python benchmarks/signing_cost.py --rounds 3 --no-large-files
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import psutil

import objsync
from objsync.bench import context, promtext
from objsync.bench.flags import add_run_flags, say
from objsync.bench.measure import become_subreaper, run_measured, tree_pids
from objsync.bench.polls import last_message, measure_polls
from objsync.bench.presets import PRESETS, Expect, body, build_tree, total_bytes
from objsync.bench.seaweed import HOST
from objsync.bench.server import local_seaweed
from objsync.bench.stats import spread
from objsync.bench.verify import check_dest
from objsync.paths import STATE_DIR

BUCKET = "signing"
REPO = "dags"
MODES = ("unsigned", "signed")
OBJSYNC = (sys.executable, "-m", "objsync")
RUN_TIMEOUT = 1800.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_flags(p, rounds=5, preset="large", presets=PRESETS, keep_what="tree, destinations, logs")
    p.add_argument("--no-large-files", action="store_true", help="leave the preset's 16 MiB files out")
    p.add_argument("--polls", type=int, default=20, help="quiet daemon polls measured per mode and round (default 20)")
    p.add_argument("--interval", type=float, default=0.5, help="daemon poll interval in seconds (default 0.5)")
    return p.parse_args(argv)


def write_tree(root: Path, files, seed: int) -> dict[str, Expect]:
    """Write the preset's files below root; their sizes and MD5s by the path a pull gives them."""
    model = {}
    for f in files:
        data = body(f, seed)
        path = root / f.rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        model[f"{REPO}/{f.rel}"] = Expect(f.size, hashlib.md5(data).hexdigest())
    return model


def env_name(mode: str, r: int) -> str:
    """The push environment of a mode's cold push in round r (a URL-only environment's name is lower case)."""
    return mode if r == 0 else f"{mode}_r{r}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def last_json(path: Path) -> dict | None:
    for line in reversed(path.read_text(errors="replace").splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None


class DaemonProbe:
    """objsync's pass counters for measure_polls, also keeping files hashed and bytes read at both ends."""

    def __init__(self, url: str, exclude: frozenset[int]) -> None:
        self.url, self.exclude = url, exclude
        self.first: dict | None = None
        self.last: dict | None = None

    def __call__(self) -> tuple[float, float, float] | None:
        try:
            text = promtext.fetch(self.url)
        except OSError:
            return None
        counts = (promtext.total(text, promtext.PASSES, {"result": "ok"}),
                  promtext.total(text, promtext.PASSES, {"result": "failed"}),
                  promtext.total(text, promtext.PASS_SECONDS_SUM))
        rchar, sched = self.io_and_cpu()
        snap = {"passes": counts[0] + counts[1], "rchar": rchar, "sched": sched,
                "verified": promtext.total(text, "objsync_files_verified_total"),
                "fetched": promtext.total(text, "objsync_files_fetched_total")}
        if counts[0] >= 1 and self.first is None:
            self.first = snap  # measure_polls starts counting at the first good pass it sees
        self.last = snap
        return counts

    def io_and_cpu(self) -> tuple[int, int]:
        """Bytes the daemon's processes have read (files and pipes: hashing a tree shows up here), and their
        threads' CPU nanoseconds (schedstat: psutil's 10 ms ticks are coarse for a 2 ms poll)."""
        rchar = sched = 0
        for pid in tree_pids(self.exclude):
            try:
                for line in Path(f"/proc/{pid}/io").read_text().splitlines():
                    if line.startswith("rchar:"):
                        rchar += int(line.split()[1])
                for task in os.listdir(f"/proc/{pid}/task"):
                    sched += int(Path(f"/proc/{pid}/task/{task}/schedstat").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                pass
        return rchar, sched

    def per_poll(self) -> dict[str, float | None]:
        if not (self.first and self.last) or self.last["passes"] <= self.first["passes"]:
            return {"hashed": None, "read_bytes": None, "sched_cpu": None}
        n = self.last["passes"] - self.first["passes"]
        hashed = (self.last["verified"] - self.first["verified"]) + (self.last["fetched"] - self.first["fetched"])
        return {"hashed": hashed / n, "read_bytes": (self.last["rchar"] - self.first["rchar"]) / n,
                "sched_cpu": (self.last["sched"] - self.first["sched"]) / n / 1e9,
                "rchar_at_start": self.first["rchar"]}


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path, server, metrics_url: str | None, model) -> None:
        self.args, self.work, self.server, self.metrics_url, self.model = args, work, server, metrics_url, model
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.server_proc = psutil.Process(server.pid)
        keep = {k: v for k, v in os.environ.items()
                if not k.startswith(("OBJSYNC_", "AWS_")) and k not in ("GITHUB_SHA", "CI_COMMIT_SHA")}
        self.env = keep | server.env()
        self.key = work / "keys" / "bench.pem"
        self.runs: list[dict] = []
        self.failed = False

    def requests(self) -> int | None:
        try:
            return promtext.s3_requests(self.metrics_url, BUCKET)
        except (OSError, ValueError):
            return None

    def server_cpu(self) -> float:
        t = self.server_proc.cpu_times()
        return t.user + t.system + t.children_user + t.children_system

    def run(self, phase: str, mode: str, r: int, argv: list[str], **extra) -> dict:
        stem = self.logs / f"{phase}-{mode}-r{r}"
        load1 = os.getloadavg()[0]
        req0, srv0, busy0, own0 = self.requests(), self.server_cpu(), context.busy_seconds(), context.own_seconds()
        usage = run_measured(argv, self.env, stdout=stem.with_suffix(".out"), stderr=stem.with_suffix(".err"),
                             timeout=RUN_TIMEOUT)
        req1, srv1, busy1, own1 = self.requests(), self.server_cpu(), context.busy_seconds(), context.own_seconds()
        rec = {"phase": phase, "mode": mode, "round": r, "wall": usage.wall, "cpu": usage.cpu,
               "peak_rss": usage.peak_rss, "rc": usage.rc, "load1": load1,
               "requests": req1 - req0 if req0 is not None and req1 is not None else None,
               "server_cpu": srv1 - srv0,
               "others_cpu": max(0.0, (busy1 - busy0) - usage.cpu - (srv1 - srv0) - (own1 - own0)),
               "summary": last_json(stem.with_suffix(".out")), **extra}
        if usage.rc != 0:
            rec["error"] = last_message(stem.with_suffix(".err")) or f"exit status {usage.rc}"
            self.failed = True
        self.runs.append(rec)
        s = rec["summary"] or {}
        counts = ", ".join(f"{k} {s[k]}" for k in ("uploaded", "unchanged", "fetched", "verified") if k in s)
        say(f"{phase:<12} {mode:<8} r{r}: {usage.wall:6.2f} s wall, {usage.cpu:6.2f} CPU s, "
            f"{usage.peak_rss / 2**20:5.0f} MiB, {rec['requests']} requests" + (f"; {counts}" if counts else "")
            + (f"; FAILED: {rec['error']}" if usage.rc else ""))
        return rec

    def push(self, phase: str, mode: str, r: int, env_name: str) -> dict:
        argv = [*OBJSYNC, "push", env_name, "--repo", REPO, "--source", str(self.work / "repo" / "workflow"),
                "--no-compile-check", "--json"]
        if mode == "signed":
            argv += ["--sign-key", str(self.key)]
        return self.run(phase, mode, r, argv)

    def pull_argv(self, mode: str, dest: Path, *flags: str) -> list[str]:
        verify = ["--verify-key", f"{self.key}.pub"] if mode == "signed" else []
        return [*OBJSYNC, "pull", *flags, *verify, f"s3://{BUCKET}/{mode}", str(dest)]

    def check(self, mode: str, r: int, dest: Path) -> None:
        result = check_dest(dest, self.model, ignore=(STATE_DIR,), mode="full")
        if not result.ok:
            self.failed = True
            say(f"MISMATCH {mode} r{r}: " + "; ".join(result.problems[:5]))
        self.runs[-1]["check"] = "ok" if result.ok else list(result.problems)

    def daemon(self, mode: str, r: int, dest: Path) -> dict:
        port = free_port()
        argv = self.pull_argv(mode, dest, "--interval", f"{round(self.args.interval * 1000)}ms",
                              "--status-addr", f"{HOST}:{port}")
        probe = DaemonProbe(f"http://{HOST}:{port}/metrics", frozenset({self.server.pid}))
        load1 = os.getloadavg()[0]
        stats = measure_polls(argv, self.env, probe, self.args.polls, self.args.interval,
                              stderr=self.logs / f"daemon-{mode}-r{r}.err", requests=self.requests)
        rec = {"phase": "daemon", "mode": mode, "round": r, "status": stats.status, "reason": stats.reason,
               "polls": stats.polls, "failed_polls": stats.failed_polls, "cpu_per_poll": stats.cpu_per_poll,
               "pass_seconds": stats.pass_seconds, "requests_per_poll": stats.requests_per_poll,
               "peak_rss": stats.peak_rss, "rss_last": stats.rss_last, "load1": load1, **probe.per_poll()}
        if stats.status != "ok" or stats.failed_polls:
            self.failed = True
        self.runs.append(rec)
        if stats.status == "ok":
            say(f"{'daemon':<12} {mode:<8} r{r}: {stats.polls} polls, {stats.cpu_per_poll * 1000:.1f} CPU ms/poll "
                f"({(rec['sched_cpu'] or 0) * 1000:.2f} by schedstat), {stats.requests_per_poll} requests/poll, "
                f"{rec['hashed']} files hashed/poll, "
                f"{(rec['read_bytes'] or 0) / 1024:.0f} KiB read/poll")
        else:
            say(f"daemon {mode} r{r} {stats.status}: {stats.reason}")
        return rec

    def round(self, r: int) -> None:
        order = MODES if r % 2 == 0 else MODES[::-1]
        for mode in order:  # a new prefix each round, so every cold push uploads everything
            self.push("push-cold", mode, r, env_name(mode, r))
        for mode in order:
            self.push("push-noop", mode, r, mode)
        dests = {mode: self.work / "dest" / mode / f"r{r}" for mode in MODES}
        # Both folders of the last round go first, so that neither cold pull alone meets freshly freed inodes.
        shutil.rmtree(self.work / "dest", ignore_errors=True)
        for mode in order:
            self.run("pull-cold", mode, r, self.pull_argv(mode, dests[mode], "--once", "--json"))
            self.check(mode, r, dests[mode])
        for mode in order:
            self.run("pull-noop", mode, r, self.pull_argv(mode, dests[mode], "--once", "--json"))
        for mode in order:
            self.daemon(mode, r, dests[mode])


ROWS = (  # phase, measure, record field, scale, decimals
    ("push cold", "wall s", "wall", 1, 2), ("push cold", "CPU s", "cpu", 1, 2),
    ("push cold", "requests", "requests", 1, 0),
    ("push no-change", "wall s", "wall", 1, 2), ("push no-change", "CPU s", "cpu", 1, 2),
    ("push no-change", "requests", "requests", 1, 0),
    ("pull cold", "wall s", "wall", 1, 2), ("pull cold", "CPU s", "cpu", 1, 2),
    ("pull cold", "peak RSS MiB", "peak_rss", 2**-20, 1), ("pull cold", "requests", "requests", 1, 0),
    ("pull cold", "server CPU s", "server_cpu", 1, 2),
    ("restart no-op", "wall s", "wall", 1, 2), ("restart no-op", "CPU s", "cpu", 1, 2),
    ("restart no-op", "peak RSS MiB", "peak_rss", 2**-20, 1), ("restart no-op", "requests", "requests", 1, 0),
    ("restart no-op", "files hashed", "verified", 1, 0),
    ("quiet poll", "CPU ms/poll", "sched_cpu", 1000, 2),
    ("quiet poll", "CPU ms/poll, 10 ms ticks", "cpu_per_poll", 1000, 1),
    ("quiet poll", "requests/poll", "requests_per_poll", 1, 2),
    ("quiet poll", "pass ms", "pass_seconds", 1000, 1), ("quiet poll", "files hashed/poll", "hashed", 1, 1),
    ("quiet poll", "KiB read/poll", "read_bytes", 1 / 1024, 0), ("quiet poll", "RSS MiB", "rss_last", 2**-20, 1),
)
PHASES = {"push cold": "push-cold", "push no-change": "push-noop", "pull cold": "pull-cold",
          "restart no-op": "pull-noop", "quiet poll": "daemon"}


def value(rec: dict, field: str) -> float | None:
    if field == "verified":
        return (rec.get("summary") or {}).get("verified")
    return rec.get(field)


def summarize(runs: list[dict]) -> list[dict]:
    rows = []
    for phase, measure, field, scale, digits in ROWS:
        good = [r for r in runs
                if r["phase"] == PHASES[phase] and r.get("rc", 0) == 0 and r.get("status", "ok") == "ok"]
        by_mode = {m: [value(r, field) for r in good if r["mode"] == m] for m in MODES}
        stats = {m: spread(v * scale for v in by_mode[m] if v is not None) for m in MODES}
        u, s = stats["unsigned"], stats["signed"]
        spreads = [(x.high - x.low) / x.median for x in (u, s) if x and x.median and x.n > 1]
        paired = {m: {r["round"]: value(r, field) for r in good if r["mode"] == m} for m in MODES}
        per_round = [paired["signed"][k] / paired["unsigned"][k] for k in sorted(paired["unsigned"])
                     if paired["signed"].get(k) is not None and paired["unsigned"][k]]
        rows.append({"phase": phase, "measure": measure, "digits": digits, "round_ratios": per_round,
                     "unsigned": u and u.__dict__, "signed": s and s.__dict__,
                     "ratio": s.median / u.median if u and s and u.median else None,
                     "spread": max(spreads) if spreads else None})
    return rows


def median(values: list[float]) -> float:
    s = spread(values)
    return s.median if s else 0.0


def cell(st: dict | None, digits: int) -> str:
    if not st:
        return "n/a"
    f = f"{{:.{digits}f}}"
    if st["n"] == 1 or st["low"] == st["high"]:
        return f.format(st["median"])
    return f"{f.format(st['median'])} ({f.format(st['low'])}–{f.format(st['high'])})"


def markdown(rows: list[dict], header: list[str]) -> str:
    lines = [*header, "", "| phase | measure | unsigned | signed | ratio (signed/unsigned) | spread |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    for row in rows:
        ratio = "n/a" if row["ratio"] is None else f"{row['ratio']:.2f}"
        spr = "n/a" if row["spread"] is None else f"{row['spread'] * 100:.0f} %"
        lines.append(f"| {row['phase']} | {row['measure']} | {cell(row['unsigned'], row['digits'])} | "
                     f"{cell(row['signed'], row['digits'])} | {ratio} | {spr} |")
    lines += ["", "Cells: median (min–max) over the rounds. Spread: the larger (max − min) / median of the two "
              "modes."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = shlex.join(["python", "benchmarks/signing_cost.py", *(sys.argv[1:] if argv is None else argv)])
    if os.environ.get("PYTHONPATH"):  # the objsync under test may be a snapshot of another commit
        command = f"PYTHONPATH={shlex.quote(os.environ['PYTHONPATH'])} {command}"
    out = Path(args.out).resolve() if args.out else None
    json_out = Path(args.json).resolve() if args.json else None
    preset = PRESETS[args.preset].without_large_files() if args.no_large_files else PRESETS[args.preset]
    become_subreaper()
    work = Path(tempfile.mkdtemp(prefix="objsync-signing-"))
    wall0 = time.monotonic()
    try:
        files = build_tree(preset, args.seed)
        model = write_tree(work / "repo" / "workflow", files, args.seed)
        say(f"{preset.name}: {len(files):,} files, {total_bytes(files) / 2**20:,.1f} MiB in {work / 'repo'}")
        with local_seaweed(work / "server") as (server, metrics_url):
            say(f"SeaweedFS at {server.endpoint_url}, metrics at {metrics_url}")
            boto3.client("s3", endpoint_url=server.endpoint_url, aws_access_key_id=server.access_key,
                         aws_secret_access_key=server.secret_key, region_name="us-east-1").create_bucket(Bucket=BUCKET)
            bench = Bench(args, work, server, metrics_url, model)
            for r in range(args.rounds):
                for mode in MODES:
                    name = env_name(mode, r)
                    bench.env[f"OBJSYNC_ENV_{name.upper()}_URL"] = f"s3://{BUCKET}/{name.replace('_', '-')}"
            bench.key.parent.mkdir()
            keygen = subprocess.run([*OBJSYNC, "keygen", str(bench.key)], env=bench.env, capture_output=True,
                                    text=True)
            if keygen.returncode:
                raise RuntimeError(f"objsync keygen failed: {keygen.stderr}")
            for r in range(args.rounds):
                say(f"--- round {r + 1} of {args.rounds}")
                bench.round(r)
            server_cpu_total = bench.server_cpu()
    finally:
        wall = time.monotonic() - wall0
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            say(f"kept {work}")
    others = [r["others_cpu"] / r["wall"] for r in bench.runs if r.get("wall") and "others_cpu" in r]
    loads = [r["load1"] for r in bench.runs]
    rows = summarize(bench.runs)
    package = Path(objsync.__file__).parent
    header = [
        f"# Signing cost, `{preset.name}` preset ({len(files):,} files, {total_bytes(files) / 2**20:,.1f} MiB)", "",
        f"{datetime.date.today().isoformat()}; machine: {os.cpu_count()} cores, loopback SeaweedFS on the same cores "
        f"({context.machine()}); objsync {objsync.__version__} from `{package}` "
        f"({context.git_revision(package)}); "
        f"command: `{command}`", "",
        f"{args.rounds} interleaved rounds, order flipped every round; {args.polls} quiet polls at "
        f"{args.interval * 1000:.0f} ms per daemon. 1-min load before runs {min(loads):.2f}–{max(loads):.2f}; "
        f"other processes kept {median(others):.2f} CPUs busy during the timed runs (median). "
        f"Run took {wall / 60:.1f} min" + ("; **some runs failed or mismatched** (see JSON)." if bench.failed else "."),
        "", "Signed: `push --sign-key` (schema 3 manifest with SHA-256s) and `pull --verify-key`. "
        "Files hashed: objsync's verified + fetched counters (restart no-op: its `verified` count); "
        "KiB read/poll: `rchar` of the daemon's processes. Quiet poll CPU: the daemon's threads' schedstat "
        "run time; the ticks row is the same window through psutil, as `objsync bench` measures it.",
    ]
    report = markdown(rows, header)
    print(report)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report)
    if json_out:
        json_out.write_text(json.dumps({"command": command, "preset": preset.name, "files": len(files),
                                        "bytes": total_bytes(files), "rounds": args.rounds, "polls": args.polls,
                                        "interval": args.interval, "machine": context.machine(), "objsync": str(package),
                                        "server_cpu_total": server_cpu_total, "seconds": wall,
                                        "rows": rows, "runs": bench.runs}, indent=1, default=str))
    return 1 if bench.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

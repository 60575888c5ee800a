"""Cold start: an empty folder pulls a 10,000-file repo, by objsync from its pack, objsync file by file, and the peers.

One interleaved run against its own SeaweedFS, on loopback and through the latency proxy: wall, CPU,
peak RSS and the requests the server saw, each folder checked byte for byte against the source.

    python benchmarks/cold_start.py --rounds 3 --json cold.json --out benchmarks/results/cold-start-dags10k.md
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import boto3
import psutil

import objsync
from objsync.bench import context, promtext
from objsync.bench.flags import add_run_flags, say
from objsync.bench.latency import latency_proxy
from objsync.bench.measure import become_subreaper, run_measured
from objsync.bench.peers import PEERS, Tool, find_peers, objsync_tool, sync_command, tool_env, version
from objsync.bench.presets import PRESETS, body, build_tree, total_bytes
from objsync.bench.seaweed import HOST
from objsync.bench.server import local_seaweed
from objsync.bench.stats import spread
from objsync.bench.verify import scan
from objsync.layout import pack_key

BUCKET = "coldstart"
REPO = "dags"
PACKED, PLAIN = "objsync (packed)", "objsync (plain)"
RUN_TIMEOUT = 1800.0
PROXY_LIFETIME = 86_400.0
GOAL_REQUESTS = 3
GOAL_RATIO = {"loopback": 0.6, "latency": 0.3}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_flags(p, rounds=3, preset="dags10k", presets=PRESETS, keep_what="tree, logs")
    p.add_argument("--latency", type=float, default=20.0, metavar="MS", help="round trip of the latency profile "
                   "(default 20 ms)")
    p.add_argument("--profiles", default="loopback,latency", help="comma-separated: loopback, latency (default both)")
    p.add_argument("--tools", default=",".join(PEERS), help=f"peers to run when present (default {','.join(PEERS)})")
    return p.parse_args(argv)


@dataclass(frozen=True)
class Contender:
    """A tool as this benchmark runs it: what it syncs, and where the files land in its folder."""

    name: str
    slug: str
    tool: Tool
    uri: str
    under: str  # the folder below the destination that holds the repo's files ("" for the peers)

    @property
    def ignore(self) -> tuple[str, ...]:
        return self.tool.ignore


def write_tree(root: Path, files, seed: int) -> None:
    for f in files:
        path = root / f.rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body(f, seed))


def exact_copy(dest: Path, source: Path, rels: list[str], under: str, ignore: tuple[str, ...]) -> list[str]:
    """What differs between dest (below `under`) and the source tree: paths, sizes, bytes, anything extra."""
    sizes, problems = scan(dest, ignore)
    prefix = f"{under}/" if under else ""
    want = {prefix + rel for rel in rels}
    problems += [f"missing: {rel}" for rel in sorted(want - sizes.keys())]
    problems += [f"unexpected: {rel}" for rel in sorted(sizes.keys() - want)]
    for rel in rels:
        got = dest / (prefix + rel)
        if prefix + rel in sizes and got.read_bytes() != (source / rel).read_bytes():
            problems.append(f"{prefix + rel}: bytes differ")
    return problems


class RequestLog:
    """A loopback TCP forwarder that records the method, target and Range of every request sent through it.

    Requests are framed by their headers and Content-Length, which covers what a pull sends."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname, parts.port)
        self.listener = socket.create_server((HOST, 0))
        self.url = f"http://{HOST}:{self.listener.getsockname()[1]}"
        self.requests: list[dict] = []
        self.connections = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=10)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        back = threading.Thread(target=self._pump, args=(upstream, client), daemon=True)
        back.start()
        buf, skip = b"", 0
        try:
            while data := client.recv(1 << 16):
                upstream.sendall(data)
                buf += data
                while True:
                    if skip:
                        n = min(skip, len(buf))
                        buf, skip = buf[n:], skip - n
                        if skip:
                            break
                    head, sep, rest = buf.partition(b"\r\n\r\n")
                    if not sep:
                        break
                    skip, buf = self._record(head), rest
            upstream.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        back.join()
        client.close()
        upstream.close()

    def _record(self, head: bytes) -> int:
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = (lines[0].split(" ") + ["", ""])[:3]
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        with self._lock:
            self.requests.append({"method": method, "target": unquote(target), "range": headers.get("range")})
        return int(headers.get("content-length") or 0)

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(1 << 16):
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def request_kind(r: dict) -> str:
    """LIST, GET, ranged GET, HEAD...: what an S3 request is, from its method and target."""
    path, _, query = r["target"].partition("?")
    params = dict(p.partition("=")[::2] for p in query.split("&") if p)
    if r["method"] == "GET" and path.rstrip("/") == f"/{BUCKET}":
        return "LIST" + (" (delimiter)" if params.get("delimiter") else "")
    if r["method"] == "GET" and r["range"]:
        return "ranged GET"
    return r["method"]


def describe_request(r: dict) -> str:
    return f"{request_kind(r)}: `{r['method']} {r['target']}`" + (f", `Range: {r['range']}`" if r["range"] else "")


def kinds(requests: list[dict]) -> str:
    counts = collections.Counter(request_kind(r) for r in requests)
    return ", ".join(f"{n:,} {k}" for k, n in counts.most_common())


@dataclass
class Bench:
    args: argparse.Namespace
    work: Path
    server: object
    metrics_url: str | None
    rels: list[str]
    contenders: list[Contender]
    base_env: dict[str, str]
    runs: list[dict] = field(default_factory=list)
    failed: bool = False
    extra_pids: list[int] = field(default_factory=list)

    def requests(self) -> int | None:
        try:
            return promtext.s3_requests(self.metrics_url, BUCKET)
        except (OSError, ValueError):
            return None

    def server_cpu(self) -> float:
        total = 0.0
        for pid in [self.server.pid, *self.extra_pids]:
            with contextlib.suppress(psutil.Error):
                t = psutil.Process(pid).cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
        return total

    def env_for(self, c: Contender, endpoint: str) -> dict[str, str]:
        return tool_env(c.tool, self.base_env, self.server.env(), endpoint)

    def argv_for(self, c: Contender, endpoint: str, dest: Path) -> list[str]:
        return sync_command(c.tool, c.uri, endpoint, dest)

    def cold(self, c: Contender, profile: str, endpoint: str, r: int) -> dict:
        dest = self.work / "dest" / f"{profile}-r{r}-{c.slug}"
        stem = self.work / "logs" / dest.name
        dest.mkdir(parents=True)  # objinsync wants the folder to exist
        load1 = os.getloadavg()[0]
        req0, srv0 = self.requests(), self.server_cpu()
        busy0, own0 = context.busy_seconds(), context.own_seconds()
        usage = run_measured(self.argv_for(c, endpoint, dest), self.env_for(c, endpoint),
                             stdout=stem.with_suffix(".out"), stderr=stem.with_suffix(".err"), timeout=RUN_TIMEOUT)
        req1, srv1 = self.requests(), self.server_cpu()
        busy1, own1 = context.busy_seconds(), context.own_seconds()
        rec = {"profile": profile, "tool": c.name, "round": r, "wall": usage.wall, "cpu": usage.cpu,
               "peak_rss": usage.peak_rss, "rc": usage.rc, "load1": load1,
               "requests": req1 - req0 if req0 is not None and req1 is not None else None,
               "server_cpu": srv1 - srv0,
               "others_cpu": max(0.0, (busy1 - busy0) - usage.cpu - (srv1 - srv0) - (own1 - own0))}
        if usage.rc != 0:
            err = stem.with_suffix(".err").read_text(errors="replace").strip().splitlines()
            rec["error"] = err[-1] if err else f"exit status {usage.rc}"
        problems = exact_copy(dest, self.work / "repo" / "workflow", self.rels, c.under, c.ignore)
        rec["check"] = "ok" if not problems else problems[:10] + ([f"... {len(problems) - 10} more"]
                                                                  if len(problems) > 10 else [])
        rec["ok"] = usage.rc == 0 and not problems
        self.failed |= not rec["ok"]
        self.runs.append(rec)
        say(f"{profile:<8} r{r} {c.name:<17} {usage.wall:7.2f} s wall, {usage.cpu:6.2f} CPU s, "
            f"{usage.peak_rss / 2**20:5.0f} MiB, {rec['requests']} requests, load {load1:.2f}"
            + ("" if rec["ok"] else f"; FAILED: {rec.get('error') or problems[:3]}"))
        # Gone before the next run, so that every run after the first meets the same freshly freed inodes.
        shutil.rmtree(dest, ignore_errors=True)
        return rec


def push(env: dict[str, str], name: str, source: Path, logs: Path, *flags: str) -> dict:
    argv = [sys.executable, "-m", "objsync", "push", name, "--repo", REPO, "--source", str(source),
            "--no-compile-check", "--json", *flags]
    started = time.monotonic()
    run = subprocess.run(argv, env=env, capture_output=True, text=True)
    (logs / f"push-{name}.err").write_text(run.stderr)
    if run.returncode:
        raise RuntimeError(f"objsync push {name} failed ({run.returncode}): {run.stderr[-2000:]}")
    summary = json.loads(run.stdout)
    say(f"pushed {name}: {summary.get('uploaded')} files, manifest {summary.get('manifest_id')}, "
        f"{time.monotonic() - started:.1f} s")
    return summary


def capture_requests(bench: Bench, c: Contender, endpoint: str) -> dict:
    """The requests of one cold pull by `c`, sent through a RequestLog in front of `endpoint` (not timed)."""
    log = RequestLog(endpoint)
    dest = bench.work / "dest" / f"captured-{c.slug}"
    dest.mkdir(parents=True)
    try:
        run = subprocess.run(bench.argv_for(c, log.url, dest), env=bench.env_for(c, log.url), capture_output=True,
                             text=True, timeout=RUN_TIMEOUT)
    finally:
        log.close()
    problems = exact_copy(dest, bench.work / "repo" / "workflow", bench.rels, c.under, c.ignore)
    if run.returncode or problems:
        bench.failed = True
        say(f"captured pull by {c.name} failed: {run.stderr[-500:]} {problems[:3]}")
    shutil.rmtree(dest, ignore_errors=True)
    say(f"captured pull by {c.name}: {len(log.requests)} requests on {log.connections} connections: "
        f"{kinds(log.requests)}")
    return {"requests": log.requests, "connections": log.connections}


def cell(st, digits: int, scale: float = 1.0) -> str:
    if not st:
        return "n/a"
    f = f"{{:,.{digits}f}}"
    m, lo, hi = (v * scale for v in (st.median, st.low, st.high))
    return f.format(m) if st.n == 1 or lo == hi else f"{f.format(m)} ({f.format(lo)}–{f.format(hi)})"


def summarize(runs: list[dict], profiles: list[str], names: list[str]) -> dict:
    out = {}
    for profile in profiles:
        rows = {}
        for name in names:
            mine = [r for r in runs if r["profile"] == profile and r["tool"] == name]
            good = [r for r in mine if r["ok"]]
            rows[name] = {"runs": len(mine), "ok": len(good),
                          **{k: spread(r[k] for r in good) for k in ("wall", "cpu", "peak_rss", "requests",
                                                                     "server_cpu")}}
        packed = rows.get(PACKED, {}).get("wall")
        peers = {n: row["wall"].median for n, row in rows.items()
                 if n not in (PACKED, PLAIN) and row["wall"] is not None}
        fastest = min(peers, key=peers.get) if peers else None
        per_round = []
        if fastest:  # packed over the fastest peer within each round
            for r in sorted({x["round"] for x in runs}):
                p = [x["wall"] for x in runs if x["profile"] == profile and x["round"] == r and x["ok"]
                     and x["tool"] == PACKED]
                f = [x["wall"] for x in runs if x["profile"] == profile and x["round"] == r and x["ok"]
                     and x["tool"] == fastest]
                if p and f:
                    per_round.append(p[0] / f[0])
        req = rows.get(PACKED, {}).get("requests")
        out[profile] = {"rows": rows, "fastest_peer": fastest,
                        "ratio": packed.median / peers[fastest] if packed and fastest else None,
                        "per_round": per_round, "max_requests": req.high if req else None}
    return out


def markdown_profile(profile: str, s: dict, title: str) -> list[str]:
    rows = s["rows"]
    packed = rows.get(PACKED, {}).get("wall")
    lines = [f"## {title}", "", "| tool | wall s | CPU s | peak RSS MiB | requests | server CPU s | "
             "objsync (packed) ÷ tool, wall | correct runs |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, row in rows.items():
        ratio = f"{packed.median / row['wall'].median:.2f}" if packed and row["wall"] else "n/a"
        ok = f"{row['ok']}/{row['runs']}" if row["ok"] == row["runs"] else f"**{row['ok']}/{row['runs']}**"
        lines.append(f"| {name} | {cell(row['wall'], 2)} | {cell(row['cpu'], 2)} | {cell(row['peak_rss'], 0, 2**-20)} | "
                     f"{cell(row['requests'], 0)} | {cell(row['server_cpu'], 2)} | {ratio} | {ok} |")
    return lines


def goals(summary: dict) -> list[str]:
    lines = ["## Goals", "", "| goal | measured | met |", "| --- | --- | --- |"]
    for profile, s in summary.items():
        mx = s["max_requests"]
        if mx is not None:
            lines.append(f"| objsync (packed) cold pull in ≤ {GOAL_REQUESTS} requests ({profile}) | "
                         f"{mx:.0f} in the run that sent most | {'yes' if mx <= GOAL_REQUESTS else '**no**'} |")
        goal = GOAL_RATIO.get(profile)
        if goal is None or s["ratio"] is None:
            continue
        pr = s["per_round"]
        within = f"; per round {min(pr):.2f}–{max(pr):.2f}" if pr else ""
        lines.append(f"| wall ≤ {goal}× the fastest peer ({profile}) | {s['ratio']:.2f}× {s['fastest_peer']} "
                     f"(medians{within}) | {'yes' if s['ratio'] <= goal else '**no**'} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = shlex.join(["python", "benchmarks/cold_start.py", *(sys.argv[1:] if argv is None else argv)])
    if os.environ.get("PYTHONPATH"):
        command = f"PYTHONPATH={shlex.quote(os.environ['PYTHONPATH'])} {command}"
    profiles = [p for p in args.profiles.split(",") if p]
    if not set(profiles) <= {"loopback", "latency"}:
        raise SystemExit(f"unknown profile in --profiles {args.profiles}")
    preset = PRESETS[args.preset]
    # A stopped run still stops its server, proxy and tool (a background job of a script ignores SIGINT).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    become_subreaper()
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    package = Path(objsync.__file__).parent
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent).stdout.strip() or "unknown"
    # Other work may change the checkout meanwhile: a run whose code changed under it is not one measurement.
    digest = context.source_digest(package)
    work = Path(tempfile.mkdtemp(prefix="objsync-coldstart-"))
    (work / "logs").mkdir()
    base_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("OBJSYNC_", "AWS_")) and k not in ("GITHUB_SHA", "CI_COMMIT_SHA")}
    peers, missing = find_peers({**os.environ}, tuple(t for t in args.tools.split(",") if t))
    wall0 = time.monotonic()
    captured: dict[str, dict] = {}
    try:
        files = build_tree(preset, args.seed)
        source = work / "repo" / "workflow"
        write_tree(source, files, args.seed)
        rels = sorted(f.rel for f in files)
        say(f"{preset.name}: {len(files):,} files, {total_bytes(files) / 2**20:,.1f} MiB in {source}")
        with local_seaweed(work / "server") as (server, metrics_url):
            say(f"SeaweedFS at {server.endpoint_url}, metrics at {metrics_url}")
            s3 = boto3.client("s3", endpoint_url=server.endpoint_url, aws_access_key_id=server.access_key,
                              aws_secret_access_key=server.secret_key, region_name="us-east-1")
            s3.create_bucket(Bucket=BUCKET)
            env = base_env | server.env() | {"OBJSYNC_ENV_PACKED_URL": f"s3://{BUCKET}/packed",
                                             "OBJSYNC_ENV_PLAIN_URL": f"s3://{BUCKET}/plain"}
            pushed = {"packed": push(env, "packed", source, work / "logs", "--pack"),
                      "plain": push(env, "plain", source, work / "logs")}
            packed_key = pack_key("packed", REPO, pushed["packed"]["manifest_id"])
            pack_bytes = s3.head_object(Bucket=BUCKET, Key=packed_key)["ContentLength"]
            # The peers sync the repo's folder of the plain push: the same 10,000 objects objsync (plain) reads,
            # and nothing of `.objsync/`, which sits beside it at the prefix's top level.
            contenders = [Contender(PACKED, "objsync-packed", objsync_tool(("--json",)), f"s3://{BUCKET}/packed", REPO),
                          Contender(PLAIN, "objsync-plain", objsync_tool(("--json",)), f"s3://{BUCKET}/plain", REPO),
                          *(Contender(t.name, t.name, t, f"s3://{BUCKET}/plain/{REPO}", "") for t in peers)]
            bench = Bench(args, work, server, metrics_url, rels, contenders, base_env)
            versions = {c.name: version(c.tool, bench.env_for(c, server.endpoint_url)) for c in contenders[2:]}
            # Before the timed runs, which also warms every tool up: no timed run is the first of its tool, nor the
            # first to write into a fresh file system.
            captured = {c.name: capture_requests(bench, c, server.endpoint_url) for c in contenders}
            with contextlib.ExitStack() as stack:
                endpoints = {"loopback": server.endpoint_url}
                if "latency" in profiles:
                    proxy = stack.enter_context(latency_proxy(server.endpoint_url, args.latency / 1000,
                                                              PROXY_LIFETIME))
                    endpoints["latency"] = proxy.url
                    bench.extra_pids.append(proxy.pid)
                    say(f"latency proxy at {proxy.url}: {proxy.latency.describe()}")
                for r in range(args.rounds):
                    say(f"--- round {r + 1} of {args.rounds}")
                    for i, profile in enumerate(profiles if r % 2 == 0 else profiles[::-1]):
                        k = (r * len(profiles) + i) % len(contenders)
                        for c in contenders[k:] + contenders[:k]:
                            bench.cold(c, profile, endpoints[profile], r)
    finally:
        wall = time.monotonic() - wall0
        if args.keep:
            say(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    names = [c.name for c in contenders]
    summary = summarize(bench.runs, profiles, names)
    loads = [r["load1"] for r in bench.runs]
    others = [r["others_cpu"] / r["wall"] for r in bench.runs if r["wall"]]
    changed = context.source_digest(package) != digest
    bench.failed |= changed
    titles = {"loopback": "Loopback (no added latency)",
              "latency": f"Latency profile: {args.latency:g} ms round trip"}
    lines = [
        f"# Cold start, `{preset.name}` preset ({len(files):,} files, {total_bytes(files) / 2**20:,.1f} MiB, one repo)",
        "",
        f"- date: {datetime.date.today().isoformat()}",
        f"- machine: {os.cpu_count()} cores ({context.machine()}); SeaweedFS on loopback, on the same cores",
        f"- command: `{command}`",
        f"- objsync: version {objsync.__version__} from `{package}` ({context.git_revision(package)}), sources "
        f"`{digest}`" + ("; **they changed during the run**" if changed else ", unchanged during the run")
        + f"; HEAD of this checkout at the start: `{head}`",
        f"- load: `{uptime}` before the run; 1-min load before each timed run {min(loads):.2f}–{max(loads):.2f}; "
        f"other processes kept {spread(others).median:.2f} CPUs busy during the timed runs (median)",
        f"- {args.rounds} rounds, tools interleaved, each round starting with a different tool; the run took "
        f"{wall / 60:.1f} min" + ("; **some runs failed or left a wrong copy (see JSON)**" if bench.failed else ""),
        "- peers: " + "; ".join(f"{n}: {v}" for n, v in versions.items())
        + ("" if not missing else "; not run: " + ", ".join(f"{k} ({v})" for k, v in missing.items())),
        "",
        f"objsync (packed) pulls `s3://{BUCKET}/packed`, published by `objsync push --pack` (manifest "
        f"`{pushed['packed'].get('manifest_id')}`; its pack is {pack_bytes:,} bytes, "
        f"{pack_bytes / total_bytes(files):.2f} of the files' bytes); objsync (plain) pulls `s3://{BUCKET}/plain`, "
        f"published by `objsync push` (manifest mode, one GET per file). The peers sync "
        f"`s3://{BUCKET}/plain/{REPO}/`, the same {len(files):,} objects, at their defaults (as `objsync bench` "
        "invokes them). Every pull starts from an empty folder, and every folder was compared byte for byte with the "
        "source tree, with no file missing or extra.",
        "",
        "Cells: median (min–max) over the rounds, correct runs only. CPU and peak RSS: the client's whole process "
        "tree. Requests: S3 requests SeaweedFS counted for the bucket during the run (all tools go through the proxy "
        "in the latency profile, so it sees the same requests). Server CPU: SeaweedFS, plus the latency proxy "
        "when it is on. Last column: objsync (packed)'s median wall over the tool's (below 1: objsync (packed) "
        "is faster).",
        "",
    ]
    for profile in profiles:
        lines += markdown_profile(profile, summary[profile], titles[profile]) + [""]
    lines += goals(summary) + [""]
    lines += ["## What each tool asked for", "",
              "One cold pull by each tool before the timed runs, on loopback through a forwarder that logs every "
              "request's method, target and Range.", "", "| tool | requests | connections | of which |",
              "| --- | ---: | ---: | --- |"]
    lines += [f"| {name} | {len(c['requests']):,} | {c['connections']:,} | {kinds(c['requests'])} |"
              for name, c in captured.items()]
    packed_requests = captured.get(PACKED, {}).get("requests", [])
    lines += ["", f"The {len(packed_requests)} requests of objsync (packed), in order:", ""]
    lines += [f"{i}. {describe_request(r)}" for i, r in enumerate(packed_requests, 1)]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(report)
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"command": command, "preset": preset.name, "files": len(files), "bytes": total_bytes(files),
             "rounds": args.rounds, "latency_ms": args.latency, "machine": context.machine(), "uptime": uptime,
             "pack_bytes": pack_bytes, "objsync_commit": head, "objsync": str(package), "source_digest": digest,
             "sources_changed": changed, "versions": versions, "missing": missing, "pushed": pushed, "seconds": wall,
             "summary": summary, "captured_requests": captured, "runs": bench.runs},
            indent=1, default=lambda o: o.__dict__ if hasattr(o, "__dict__") else str(o)))
    return 1 if bench.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

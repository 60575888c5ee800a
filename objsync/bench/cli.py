"""`objsync bench`: flags, the run itself, and where the results go."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import logging
import os
import shlex
import shutil
import signal
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Iterator, Sequence

import objsync
from objsync.bench import context, fleet, output, peers, report, variants
from objsync.bench.flags import csv_of as _csv, duration as _duration, tool_repeat as _tool_repeat
from objsync.bench.latency import Latency, latency_proxy, loopback_http
from objsync.bench.measure import become_subreaper
from objsync.bench.phases import DAEMON_PHASES, PHASES, Bench, BenchPlan, BenchResult
from objsync.bench.presets import PRESETS, Preset
from objsync.bench.seeding import Target
from objsync.bench.server import local_seaweed
from objsync.bench.verify import FULL_LIMIT

log = logging.getLogger("objsync.bench")

LOCAL_BUCKET = "objsync-bench"
SWEEP_WORKERS = "0,1,2,4"
SWEEP_THREADS = "4,8,16,32"
PROXY_LIFETIME = 86_400.0  # the latency proxy also stops with the harness: this is only a backstop


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", choices=sorted(PRESETS), default="small",
                   help="tree size: tiny 50 files, small 1,000, large 10,000 + 8 x 16 MiB, "
                        "xlarge 100,000 + 8 x 16 MiB, dags10k and dags100k: 10,000 and 100,000 DAG-like files only")
    p.add_argument("--no-large-files", action="store_true", help="leave the 16 MiB files out of the preset")
    p.add_argument("--seed", type=int, default=1, help="seed of the synthetic tree and its edits (default 1)")
    p.add_argument("--phases", type=_csv(str), default=PHASES, metavar="LIST",
                   help=f"comma-separated subset of {','.join(PHASES)} (default: all); or `fleet` alone, for "
                        f"the cost of quiet polls of many repos, manifest mode against LIST mode")
    p.add_argument("--tools", type=_csv(str), default=peers.KINDS, metavar="LIST",
                   help=f"comma-separated subset of {','.join(peers.KINDS)}; missing peers are skipped (default: all)")
    p.add_argument("--repeats", type=int, default=3, help="runs per tool and phase (default 3)")
    p.add_argument("--tool-repeats", type=_tool_repeat, action="append", default=[], metavar="NAME=N",
                   help="fewer (or more) runs for one tool, e.g. aws=1; repeatable")
    p.add_argument("--baseline-bin", metavar="PATH",
                   help=f"another build's objsync executable, run as `{peers.BASELINE}` in the same rounds, with the "
                        f"same flags and checks, and compared phase by phase (default: ${peers.BASELINE_VAR})")
    p.add_argument("--workers", type=int, help="passed to objsync pull --workers")
    p.add_argument("--threads", type=int, help="passed to objsync pull --threads")
    p.add_argument("--objsync-args", type=shlex.split, default=[], metavar="ARGS",
                   help="more flags for objsync pull, as one string, e.g. --objsync-args=--no-fsync")
    p.add_argument("--endpoint-url", metavar="URL",
                   help="use this S3 endpoint instead of starting a local SeaweedFS (needs --bucket)")
    p.add_argument("--bucket", help="use this existing bucket instead of a local SeaweedFS")
    p.add_argument("--prefix", help="prefix for the synthetic tree (default objsync-bench/PRESET-SEED-RANDOM/); "
                                    "must be empty; everything uploaded is deleted afterwards")
    p.add_argument("--metrics-url", metavar="URL",
                   help="a SeaweedFS Prometheus page for counting requests on --endpoint-url (local: automatic)")
    p.add_argument("--daemon-polls", type=int, default=20, help="polls measured in the daemon phase (default 20)")
    p.add_argument("--daemon-interval", type=_duration, default=0.5, metavar="DURATION",
                   help="objsync's --interval in the daemon phase (default 500ms)")
    p.add_argument("--verify", choices=("auto", "full", "sample"), default="auto",
                   help=f"hash every file (full), or sizes of all plus the MD5 of a sample; auto: full up to "
                        f"{FULL_LIMIT:,} files")
    p.add_argument("--run-timeout", type=float, default=1800.0, metavar="SECONDS",
                   help="stop a single run after this long (default 1800)")
    p.add_argument("--latency", type=_duration, metavar="DURATION",
                   help="put a proxy in front of the local SeaweedFS that delays every request by this round trip "
                        "(e.g. 20ms), as a real region would; every tool goes through it")
    p.add_argument("--sweep-concurrency", type=_csv(int), default=(), metavar="LIST",
                   help="also run each tool at each of these in-flight counts (its own flag, e.g. s5cmd --numworkers), "
                        "beside its defaults, and report each tool's best")
    p.add_argument("--sweep", action="store_true",
                   help="instead of peers, time objsync for each --sweep-workers x --sweep-threads and print the best")
    p.add_argument("--sweep-workers", type=_csv(int), default=_csv(int)(SWEEP_WORKERS), metavar="LIST",
                   help=f"worker counts for --sweep (default {SWEEP_WORKERS})")
    p.add_argument("--sweep-threads", type=_csv(int), default=_csv(int)(SWEEP_THREADS), metavar="LIST",
                   help=f"thread counts for --sweep (default {SWEEP_THREADS})")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"),
                   help="folder for the .md, .json and .png results (default benchmarks/results)")
    p.add_argument("--no-chart", action="store_true", help="do not draw the PNG chart")
    p.add_argument("--workdir", type=Path,
                   help="scratch folder, kept with its logs (default: a new temporary folder, removed after)")
    p.add_argument("--keep-logs", action="store_true", help="keep the scratch folder with every tool's output")
    fleet.add_arguments(p)


def register(subparsers) -> argparse.ArgumentParser:
    """Add `bench` to objsync's subcommands."""
    p = subparsers.add_parser(
        "bench", help="time objsync against s5cmd, aws, rclone and objinsync, or tune its flags",
        description="Seed a synthetic DAG tree into S3 (a local SeaweedFS by default) and time objsync pull "
                    "against the peers found here, phase by phase.")
    add_arguments(p)
    p.set_defaults(func=run)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m objsync.bench`: the same as `objsync bench`."""
    parser = argparse.ArgumentParser(prog="objsync bench", description="Benchmark objsync pull against its peers.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="objsync bench: %(message)s")
    return run(args, dict(os.environ), parser)


# -- the run ------------------------------------------------------------------------


def _plan(args: argparse.Namespace, parser: argparse.ArgumentParser) -> BenchPlan:
    unknown = [ph for ph in args.phases if ph not in PHASES]
    if unknown:
        parser.error(f"unknown phase {unknown[0]!r}; choose from {', '.join(PHASES)}")
    if args.repeats < 1 or args.daemon_polls < 1:
        parser.error("--repeats and --daemon-polls must be at least 1")
    preset: Preset = PRESETS[args.preset]
    if args.no_large_files:
        preset = preset.without_large_files()
    phases = tuple(ph for ph in PHASES if ph in args.phases)
    if args.sweep:
        phases = tuple(ph for ph in phases if ph not in DAEMON_PHASES)
    if args.latency and args.bucket and not loopback_http(args.endpoint_url):
        parser.error("--latency forwards plain HTTP on loopback only: use the local SeaweedFS, or an --endpoint-url "
                     "such as http://127.0.0.1:PORT (a remote bucket has latency of its own)")
    if args.sweep and args.sweep_concurrency:
        parser.error("--sweep tunes objsync's flags alone; --sweep-concurrency runs every tool: choose one")
    if any(n < 1 for n in args.sweep_concurrency):
        parser.error("--sweep-concurrency counts must be at least 1")
    return BenchPlan(preset=preset, seed=args.seed, phases=phases, repeats=args.repeats,
                     tool_repeats=tuple(args.tool_repeats), daemon_polls=args.daemon_polls,
                     daemon_interval=args.daemon_interval, verify=args.verify, run_timeout=args.run_timeout)


def _objsync_flags(args: argparse.Namespace) -> tuple[str, ...]:
    flags: list[str] = []
    if args.workers is not None:
        flags += ["--workers", str(args.workers)]
    if args.threads is not None:
        flags += ["--threads", str(args.threads)]
    return tuple(flags + args.objsync_args)


def _tools(args, env, parser) -> tuple[list[peers.Tool], dict[str, str]]:
    unknown = [t for t in args.tools if t not in peers.KINDS]
    if unknown:
        parser.error(f"unknown tool {unknown[0]!r}; choose from {', '.join(peers.KINDS)}")
    asked = args.baseline_bin or env.get(peers.BASELINE_VAR)
    if args.sweep:
        return [peers.objsync_tool(("--workers", str(w), "--threads", str(t), *args.objsync_args),
                                   name=f"--workers {w} --threads {t}")
                for w in args.sweep_workers for t in args.sweep_threads], (
            {peers.BASELINE: "--sweep times this build's settings only"} if asked else {})
    tools = [peers.objsync_tool(_objsync_flags(args))] if "objsync" in args.tools else []
    found, missing = peers.find_peers(env, tuple(t for t in args.tools if t in peers.PEERS))
    base, why = peers.find_baseline(args.baseline_bin, env)
    if base:
        tools.append(peers.baseline_tool(base, _objsync_flags(args)))
    elif asked:
        parser.error(why)  # asked for a comparison that cannot be made: a run without it would mislead
    return tools + found, missing


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the runs and the server the same way Ctrl-C does


def _say(event: object) -> None:
    sys.stderr.write(report.progress_line(event) + "\n")
    sys.stderr.flush()


def run(args: argparse.Namespace, env: dict[str, str], parser: argparse.ArgumentParser) -> int:
    """Run the benchmark and write its results; 0 when every run mirrored the bucket exactly."""
    if fleet.PHASE in args.phases:
        if len(args.phases) > 1:
            parser.error("the fleet phase seeds its own bucket and runs alone: --phases fleet")
        if args.endpoint_url and not args.bucket:
            parser.error("--endpoint-url needs --bucket (an existing bucket to write the fleet's objects into)")
        if args.latency or args.sweep_concurrency:
            parser.error("the fleet phase measures quiet polls on loopback: it takes neither --latency nor "
                         "--sweep-concurrency")
        return fleet.run(args, env, _say)
    plan = _plan(args, parser)
    tools, missing = _tools(args, env, parser)
    if not tools:
        parser.error("no tool to benchmark")
    if args.endpoint_url and not args.bucket:
        parser.error("--endpoint-url needs --bucket (an existing bucket to write the synthetic tree into)")
    for kind, reason in missing.items():
        _say(f"{kind}: skipped, {reason}")
    from botocore.exceptions import BotoCoreError, ClientError

    become_subreaper()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="objsync-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    tools = variants.with_variants(tools, args.sweep_concurrency, workdir / "config")
    started = datetime.datetime.now().astimezone()
    source_before = context.source_digest(Path(objsync.__file__).parent)
    bytecode = context.compile_package(Path(objsync.__file__).parent)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        result, target = _run_against_target(args, env, plan, tools, workdir)
    except KeyboardInterrupt:
        _say("interrupted: the running tool and the local server (if any) were stopped")
        return 130
    except (RuntimeError, OSError, BotoCoreError, ClientError) as exc:
        _say(f"error: {exc if isinstance(exc, RuntimeError) else f'{type(exc).__name__}: {exc}'}")
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
        if args.keep_logs or args.workdir:
            _say(f"logs kept in {workdir / 'logs'}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    meta = output.meta(env, tools, missing, target, result, started) | {"bytecode": bytecode}
    if args.latency:
        meta |= {"latency": Latency(args.latency).describe(), "latency_rtt": args.latency}
    if context.source_digest(Path(objsync.__file__).parent) != source_before:
        meta["source_changed"] = True
        _say("warning: objsync's source files changed during the benchmark, so its runs may mix versions")
    # The baseline counts as ours: both builds get ratios against the peers; output compares the two builds.
    ours = [t.name for t in tools if t.kind == "objsync" and t.concurrency is None]
    text, doc = output.documents(result, meta, ours, args.sweep)
    latency = f"-{round(args.latency * 1000)}ms" if args.latency else ""
    sweep = "-sweep" if args.sweep or args.sweep_concurrency else ""
    stem = f"{plan.preset.name}{latency}{sweep}-{datetime.date.today().isoformat()}"
    paths = output.write(args.out, stem, text, doc, result, not args.no_chart, _say)
    sys.stdout.write(text)
    _say("results: " + ", ".join(str(p) for p in paths))
    bad = [r for r in result.runs if not r.ok] + [d for d in result.daemons if d.check and not d.check.ok]
    return 1 if bad else 0


def _run_against_target(args, env, plan, tools, workdir) -> tuple[BenchResult, Target]:
    prefix = args.prefix or f"objsync-bench/{plan.preset.name}-{plan.seed}-{uuid.uuid4().hex[:8]}/"
    prefix = prefix.lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    if args.bucket:
        endpoint = args.endpoint_url or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
        target = Target(endpoint, args.bucket, prefix, env={}, metrics_url=args.metrics_url)
        with _through_latency(target, args.latency) as target:
            return _bench(plan, target, tools, workdir, env), target
    _say("starting a local SeaweedFS on loopback")
    with local_seaweed(workdir / "server") as (server, metrics_url):
        target = Target(server.endpoint_url, LOCAL_BUCKET, prefix, env=server.env(), metrics_url=metrics_url,
                        server_pid=server.pid)
        from objsync.bench.seeding import make_client

        make_client(target).create_bucket(Bucket=LOCAL_BUCKET)
        _say(f"SeaweedFS at {server.endpoint_url}" + (f", metrics at {metrics_url}" if metrics_url else ""))
        with _through_latency(target, args.latency) as target:
            return _bench(plan, target, tools, workdir, env), target


@contextlib.contextmanager
def _through_latency(target: Target, rtt: float | None) -> Iterator[Target]:
    """The target as the tools see it: through the latency proxy when there is one."""
    if not rtt:
        yield target
        return
    assert target.endpoint_url is not None
    with latency_proxy(target.endpoint_url, rtt, PROXY_LIFETIME) as proxy:
        _say(f"latency proxy at {proxy.url}: {proxy.latency.describe()}")
        # The tools see only the proxy; the harness seeds and checks the bucket directly.
        yield dataclasses.replace(target, endpoint_url=proxy.url, direct_url=target.endpoint_url, proxy_pid=proxy.pid)


def _bench(plan, target, tools, workdir, env) -> BenchResult:
    bench = Bench(plan, target, tools, workdir, env, _say)
    try:
        return bench.run()
    finally:
        if target.server_pid is None:  # a local server's data is thrown away with it
            bench.clean_bucket()

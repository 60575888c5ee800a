"""`objsync bench`: flags, the run itself, and where the results go."""

from __future__ import annotations

import argparse
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
from typing import Any, Sequence

import objsync
from objsync.bench import context, fleet, peers, report
from objsync.bench.measure import become_subreaper
from objsync.bench.phases import PHASES, Bench, BenchPlan, BenchResult
from objsync.bench.presets import PRESETS, Preset
from objsync.bench.seeding import Target
from objsync.bench.server import local_seaweed
from objsync.bench.verify import FULL_LIMIT
from objsync.pull.config import parse_duration
from objsync.s3.errors import describe_error

log = logging.getLogger("objsync.bench")

LOCAL_BUCKET = "objsync-bench"
SWEEP_WORKERS = "0,1,2,4"
SWEEP_THREADS = "4,8,16,32"


def _csv(kind):
    def parse(text: str) -> tuple:
        try:
            return tuple(kind(x.strip()) for x in text.split(",") if x.strip())
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    parse.__name__ = f"list of {kind.__name__}"
    return parse


def _tool_repeat(text: str) -> tuple[str, int]:
    name, sep, count = text.partition("=")
    if not sep or not count.isdigit() or int(count) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: use NAME=N with N at least 1, e.g. aws=1")
    return name.strip(), int(count)


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", choices=sorted(PRESETS), default="small",
                   help="tree size: tiny 50 files, small 1,000, large 10,000 + 8 x 16 MiB, xlarge 100,000 + 8 x 16 MiB")
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
    if args.sweep and "daemon" in phases:
        phases = tuple(ph for ph in phases if ph != "daemon")
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
    if args.sweep:
        return [peers.objsync_tool(("--workers", str(w), "--threads", str(t), *args.objsync_args),
                                   name=f"--workers {w} --threads {t}")
                for w in args.sweep_workers for t in args.sweep_threads], {}
    tools = [peers.objsync_tool(_objsync_flags(args))] if "objsync" in args.tools else []
    found, missing = peers.find_peers(env, tuple(t for t in args.tools if t in peers.PEERS))
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
    started = datetime.datetime.now().astimezone()
    source_before = context.source_digest(Path(objsync.__file__).parent)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        result, target = _run_against_target(args, env, plan, tools, workdir)
    except KeyboardInterrupt:
        _say("interrupted: the running tool and the local server (if any) were stopped")
        return 130
    except (RuntimeError, OSError, BotoCoreError, ClientError) as exc:
        _say(f"error: {exc if isinstance(exc, RuntimeError) else describe_error(exc)}")
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
        if args.keep_logs or args.workdir:
            _say(f"logs kept in {workdir / 'logs'}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    meta = _meta(args, env, plan, tools, missing, target, result, started)
    if context.source_digest(Path(objsync.__file__).parent) != source_before:
        meta["source_changed"] = True
        _say("warning: objsync's source files changed during the benchmark, so its runs may mix versions")
    ours = [t.name for t in tools if t.kind == "objsync"]
    text = report.render_markdown(result, meta, ours if not args.sweep else [])
    if args.sweep:
        text += "\n" + sweep_advice(result)
    paths = _write(args, plan, result, meta, ours, text)
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
        return _bench(plan, target, tools, workdir, env), target
    _say("starting a local SeaweedFS on loopback")
    with local_seaweed(workdir / "server") as (server, metrics_url):
        target = Target(server.endpoint_url, LOCAL_BUCKET, prefix, env=server.env(), metrics_url=metrics_url,
                        server_pid=server.pid)
        from objsync.bench.seeding import make_client

        make_client(target).create_bucket(Bucket=LOCAL_BUCKET)
        _say(f"SeaweedFS at {server.endpoint_url}" + (f", metrics at {metrics_url}" if metrics_url else ""))
        return _bench(plan, target, tools, workdir, env), target


def _bench(plan, target, tools, workdir, env) -> BenchResult:
    bench = Bench(plan, target, tools, workdir, env, _say)
    try:
        return bench.run()
    finally:
        if target.server_pid is None:  # a local server's data is thrown away with it
            bench.clean_bucket()


def _meta(args, env, plan, tools, missing, target, result: BenchResult, started) -> dict[str, Any]:
    measured = [r for r in result.runs if r.others_cpu is not None]
    load = context.load_summary([r.load1 for r in result.runs], sum(r.others_cpu for r in measured),
                                sum(r.wall for r in measured))
    verify_modes = sorted({r.check.mode for r in result.runs})
    full = verify_modes == ["full"]
    return {
        "date": started.strftime("%Y-%m-%d %H:%M %Z"),
        "machine": context.machine(),
        "load": load,
        "files": result.work["cold"].files,
        "bytes": result.work["cold"].bytes,
        "target": (f"local SeaweedFS on loopback ({target.endpoint_url})" if target.server_pid
                   else f"{target.endpoint_url or 'AWS S3'} bucket {target.bucket}"),
        "requests_source": ("SeaweedFS S3 gateway counter SeaweedFS_s3_request_total for the bucket, "
                            "read before and after each run" if target.metrics_url else "n/a (no metrics page)"),
        "objsync": f"{objsync.__version__} at {context.git_revision(Path(objsync.__file__).parent)}",
        "versions": {t.name: peers.version(t, env) for t in tools if t.kind != "objsync"},
        "missing": {k: v for k, v in missing.items()},
        "verify": ("every path, size and MD5 (full compare)" if full else
                   f"every path and size, MD5 of a seeded sample ({', '.join(verify_modes)})"),
    }


def _write(args, plan: BenchPlan, result: BenchResult, meta, ours, text: str) -> list[Path]:
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"{plan.preset.name}{'-sweep' if args.sweep else ''}-{datetime.date.today().isoformat()}"
    base = args.out / stem
    if base.with_suffix(".json").exists():
        base = args.out / f"{stem}-{datetime.datetime.now().strftime('%H%M%S')}"
    md, js, png = base.with_suffix(".md"), base.with_suffix(".json"), base.with_suffix(".png")
    md.write_text(text)
    report.write_json(report.to_json(result, meta, ours), js)
    paths = [md, js]
    if not args.no_chart:
        if report.write_chart(result, png):
            paths.append(png)
        else:
            _say("no chart: matplotlib is not installed (pip install 'objsync[bench]')")
    return paths


def sweep_advice(result: BenchResult) -> str:
    """The fastest objsync setting for each phase, from the medians."""
    summaries = report.summarize(result)
    lines = ["## Best settings", ""]
    for by, label in (("wall", "fastest"), ("cpu", "least CPU")):
        for s in report.best_per_phase(summaries, by):
            lines.append(f"- {s.phase}, {label}: `objsync pull {s.tool}` ({s.wall.median:.2f} s median, "
                         f"CPU {s.cpu.median:.2f} s)")
    lines += ["", "On a busy machine (see others' CPU) the wall times move with the neighbours; CPU seconds "
                  "move less. Batch size is not an `objsync pull` flag yet, so it is not swept."]
    return "\n".join(lines) + "\n"

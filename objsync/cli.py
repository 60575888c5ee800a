"""Command line: `objsync pull` (and the `objinsync` alias), parsed into a frozen config."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path

from objsync import __version__
from objsync import log as logsetup
from objsync.paths import Filter, split_patterns
from objsync.model import Fsync
from objsync.pull.config import PullConfig, parse_duration, parse_file_mode, parse_max_delete
from objsync.pull.plan import Rules
from objsync.pull.pool import PoolConfig, default_workers
from objsync.push import cli as push_cli
from objsync.s3.config import Location, RemoteConfig

log = logging.getLogger("objsync")


def _typed(parse):
    def convert(text: str):
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    convert.__name__ = parse.__name__.replace("parse_", "")
    return convert


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(f"{text!r} must be 0 or more")
    return value


def build_parser(prog: str = "objsync", with_bench: bool = False) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Keep a local folder identical to an S3 prefix.")
    parser.add_argument("--version", action="version", version=f"objsync {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    pull = sub.add_parser("pull", help="mirror s3://BUCKET/PREFIX into LOCAL_DIR, once or continuously",
                          description="Mirror s3://BUCKET[/PREFIX] into LOCAL_DIR.")
    pull.add_argument("remote", metavar="REMOTE_URI", help="s3://BUCKET[/PREFIX]")
    pull.add_argument("local", metavar="LOCAL_DIR", help="destination folder (created if missing)")
    pull.add_argument("-o", "--once", action="store_true", help="pull once, then exit")
    pull.add_argument("-i", "--interval", type=_typed(parse_duration), default=parse_duration("5s"),
                      help="time between passes in daemon mode: 500ms, 5s, 1m or seconds (default 5s)")
    pull.add_argument("-e", "--exclude", action="append", default=[], metavar="GLOB",
                      help="skip paths matching GLOB (doublestar, relative to the prefix); repeatable or comma-separated")
    pull.add_argument("--include", action="append", default=[], metavar="GLOB",
                      help="mirror only paths matching GLOB; repeatable or comma-separated")
    pull.add_argument("--scratch", action="store_true",
                      help="ignore the cache and local files and download everything again")
    pull.add_argument("-m", "--default-file-mode", type=_typed(parse_file_mode), default=0o664,
                      metavar="MODE", help="mode of written files (default 0664)")
    pull.add_argument("--endpoint-url", "--s3-endpoint", dest="endpoint_url", metavar="URL",
                      help="S3 endpoint (default: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, then AWS)")
    pull.add_argument("--disable-ssl", action="store_true", help="use plain http")
    pull.add_argument("--region", help="S3 region (default: AWS_REGION, the AWS config, else us-east-1)")
    pull.add_argument("-s", "--status-addr", default=":8087",
                      help="address of /health and /metrics in daemon mode, or 'off' (default :8087)")
    pull.add_argument("--workers", type=_typed(_positive_int), default=None,
                      help=f"worker processes (default {default_workers()} here, from the CPU count; 0 runs in-process)")
    pull.add_argument("--threads", type=_typed(_positive_int), default=32,
                      help="downloads in flight at once in each process (default 32)")
    pull.add_argument("--connect-timeout", type=_typed(parse_duration), default=10.0, metavar="DURATION",
                      help="S3 connect timeout (default 10s)")
    pull.add_argument("--read-timeout", type=_typed(parse_duration), default=30.0, metavar="DURATION",
                      help="S3 read timeout: a stalled response fails after this long (default 30s)")
    pull.add_argument("--max-delete", type=_typed(parse_max_delete), default=None, metavar="N|P%",
                      help="refuse a pass that would delete more than N files or P%% of the local files "
                           "(default: 50%%, and at least 10 files; a percentage rounds up)")
    pull.add_argument("--allow-empty", action="store_true",
                      help="allow an empty listing to delete every local file")
    pull.add_argument("--fsync", choices=["batch", "file", "none"], default="batch",
                      help="durability before files are renamed into place: one filesystem sync per batch "
                           "(default), an fsync per file, or none")
    pull.add_argument("--no-fsync", dest="fsync", action="store_const", const="none",
                      help="same as --fsync none")
    pull.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
    pull.add_argument("--json", action="store_true", help="print a JSON summary on stdout at the end")
    pull.add_argument("--max-failures", type=int, default=3, metavar="N",
                      help="consecutive failed passes before /health turns unhealthy; negative: never (default 3)")
    pull.add_argument("--exec-on-change", metavar="CMD",
                      help="run CMD (via the shell) after a pass that changed files; counts are in its environment")
    pull.add_argument("--touch-file", metavar="PATH", help="touch PATH after a pass that changed files")
    pull.add_argument("--log-level", default=None, choices=["debug", "info", "warning", "error"],
                      help="log level (default info, or debug when DEBUG=1)")
    pull.add_argument("--pin", action="append", default=[], metavar="REPO=MANIFEST_ID",
                      help="hold a repo at a version from its manifest history; repeatable")
    pull.add_argument("--rescan-every", type=_typed(parse_duration), default=300.0, metavar="DURATION",
                      help="manifest mode: how often to stat every local file and look for top-level folders "
                           "without a manifest (default 5m; SIGHUP does it at once)")
    pull.add_argument("--atomic", action="store_true",
                      help="publish each top-level folder as a complete new tree behind a symlink, swapped in "
                           "one rename, so that a reader never sees two versions of one folder at once")
    pull.add_argument("--keep-snapshots", type=_typed(parse_duration), default=300.0, metavar="DURATION",
                      help="with --atomic: how long a replaced tree stays for the processes still reading it "
                           "(default 5m)")
    pull.add_argument("--ignore-manifests", action="store_true",
                      help="LIST the whole prefix on every pass and mirror what is listed, even where repos "
                           "have manifests")
    pull.set_defaults(func=pull_command)
    push_cli.register(sub)
    if with_bench:
        from objsync.bench import cli as bench_cli

        bench_cli.register(sub)
    else:  # listed for --help; the harness and its imports load only when `bench` is asked for
        sub.add_parser("bench", help="benchmark objsync against s5cmd, aws s3 sync and rclone")
    return parser


def config_from_args(args: argparse.Namespace, env: dict[str, str]) -> PullConfig:
    """Build the frozen config; raises ValueError for a bad value."""
    source = Location.parse(args.remote)
    endpoint = args.endpoint_url or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None
    remote = RemoteConfig(
        endpoint_url=endpoint,
        region=args.region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
        use_ssl=not args.disable_ssl,
        verify=None,
        connect_timeout=args.connect_timeout,
        read_timeout=args.read_timeout,
        max_pool_connections=max(10, args.threads + 2),
        concurrency=max(1, args.threads),
    )
    rules = Rules(
        filter=Filter(includes=split_patterns(args.include), excludes=split_patterns(args.exclude)),
        scratch=args.scratch, allow_empty=args.allow_empty, max_delete=args.max_delete)
    workers = default_workers() if args.workers is None else args.workers
    from objsync.pull.listing import check_pins

    pins = check_pins(split_patterns(args.pin))
    return PullConfig(
        source=source, dest=Path(args.local).absolute(), remote=remote, rules=rules,
        pool=PoolConfig(workers=workers, threads=max(1, args.threads)),
        file_mode=args.default_file_mode, fsync=Fsync(args.fsync), once=args.once,
        interval=args.interval, dry_run=args.dry_run, pins=tuple(sorted(pins.items())),
        rescan_every=args.rescan_every, use_manifests=not args.ignore_manifests, atomic=args.atomic,
        keep_snapshots=args.keep_snapshots)


def apply_env_defaults(parser: argparse.ArgumentParser, env: dict[str, str], command: str = "pull") -> None:
    """Let every flag of `command` come from OBJSYNC_<FLAG> (e.g. OBJSYNC_INTERVAL=10s); flags still win."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    for action in sub._actions:
        if not action.option_strings or action.dest in ("help", "version"):
            continue
        var = "OBJSYNC_" + action.dest.upper()
        if var not in env:
            continue
        text = env[var]
        try:
            if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
                value = _env_bool(text)
            elif isinstance(action, argparse._AppendAction):
                value = [text]
            else:
                value = action.type(text) if action.type else text
                if action.choices and value not in action.choices:
                    raise ValueError(f"choose from {', '.join(map(str, action.choices))}")
        except (ValueError, argparse.ArgumentTypeError) as exc:
            parser.error(f"environment variable {var}={text!r}: {exc}")
        sub.set_defaults(**{action.dest: value})


def _env_bool(text: str) -> bool:
    t = text.strip().lower()
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("use true or false")


def main(argv: list[str] | None = None, prog: str = "objsync") -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(prog, with_bench=bool(argv) and argv[0] == "bench")
    env = dict(os.environ)
    apply_env_defaults(parser, env)
    args = parser.parse_args(argv)
    level = getattr(args, "log_level", None) or ("debug" if env.get("DEBUG") not in (None, "", "0") else "info")
    logsetup.setup(level)
    return args.func(args, env, parser)


def pull_command(args: argparse.Namespace, env: dict[str, str], parser: argparse.ArgumentParser) -> int:
    try:
        cfg = config_from_args(args, env)
        if not cfg.once and args.status_addr != "off":
            from objsync.daemon.status import parse_addr

            parse_addr(args.status_addr)
    except ValueError as exc:
        parser.error(str(exc))
    return run_pull(cfg, args, env)


def run_pull(cfg: PullConfig, args: argparse.Namespace, env: dict[str, str]) -> int:
    """Open a session on the destination, then run once or as a daemon."""
    from objsync.daemon.loop import Hooks, Signals, run_hooks
    from objsync.pull.session import SessionError, open_session

    signals = Signals().install()
    hooks = Hooks(args.exec_on_change, args.touch_file)
    try:
        with open_session(cfg) as session:
            if not cfg.once and not cfg.dry_run:
                return _daemon(cfg, args, env, session, signals, hooks)
            progress = _Progress() if sys.stderr.isatty() and not args.json else None
            report = session.run_pass(signals.stop, on_plan=progress.plan if progress else None,
                                      on_results=progress.update if progress else None)
            if progress:
                progress.close()
    except SessionError as exc:
        log.error("%s", exc)
        return 1
    finally:
        signals.restore()
    if cfg.dry_run and report.plan is not None:
        _print_plan(report.plan)
    _print_summary(report, as_json=args.json)
    if report.changed and not cfg.dry_run:
        run_hooks(hooks, report, cfg.dest)
    if report.interrupted:
        return 128 + (signals.received or signal.SIGINT)
    return 0 if report.ok else 1


def _daemon(cfg, args, env, session, signals, hooks) -> int:
    from objsync.daemon.loop import run_loop, sentry_reporter
    from objsync.daemon.metrics import Metrics
    from objsync.daemon.status import StatusServer

    metrics = Metrics()
    status = None
    if args.status_addr != "off":
        try:
            status = StatusServer(args.status_addr, metrics.registry).start()
        except OSError as exc:
            log.error("cannot serve status on %s: %s", args.status_addr, exc.strerror or exc)
            return 1
        log.info("serving /health and /metrics on %s", args.status_addr)
    log.info("pulling %s into %s every %gs", cfg.source, cfg.dest, cfg.interval)
    session.warm_up()
    try:
        return run_loop(session, signals=signals, hooks=hooks, max_failures=args.max_failures, status=status,
                        metrics=metrics, sentry=sentry_reporter(env.get("SENTRY_DSN")))
    finally:
        if status is not None:
            status.stop()


class _Progress:
    """A progress bar on the terminal for `--once`."""

    def __init__(self) -> None:
        self._bar = None

    def plan(self, p) -> None:
        from tqdm import tqdm

        if p.fetches:
            self._bar = tqdm(total=len(p.fetches), unit="file", desc="objsync", leave=False, file=sys.stderr)

    def update(self, results) -> None:
        if self._bar is not None:
            self._bar.update(len(results))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _print_plan(p) -> None:
    out = sys.stdout
    for f in p.fetches:
        out.write(f"fetch   {f.rel}  ({f.reason}{', verify local bytes first' if f.verify else ''})\n")
    for rel in p.displaced:
        out.write(f"delete  {rel}  (in the way of a fetch)\n")
    for rel in p.deletes:
        out.write(f"delete  {rel}\n")
    for r in p.rejected:
        out.write(f"reject  {r.key!r}: {r.reason}\n")
    for reason, n in sorted(p.skipped.items()):
        out.write(f"skip    {n} ({reason})\n")
    if p.delete_blocked:
        out.write(f"hold    deletes: {p.delete_blocked}\n")


def _print_summary(report, as_json: bool) -> None:
    from objsync.pull.report import log_report

    if as_json:
        sys.stdout.write(json.dumps(report.as_dict()) + "\n")
        sys.stdout.flush()
    log_report(report)


def objinsync_main() -> int:
    """Entry point of the `objinsync` alias: same flags, same behaviour."""
    return main(prog="objinsync")

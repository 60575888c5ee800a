"""Command line: `objsync pull` (and its `objinsync` alias), push, promote and bench, parsed into config objects."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from objsync import __version__
from objsync import log as logsetup
from objsync.daemon.config import DaemonConfig, parse_addr
from objsync.daemon.hooks import Hooks
from objsync.deletecap import parse_max_delete
from objsync.envflags import EnvFlag, FlagTable, env_defaults, parse_bool
from objsync.layout import check_manifest_id, check_repo_name
from objsync.model import Fsync
from objsync.paths import Filter, split_patterns
from objsync.pull.config import DEFAULT_KEEP, DEFAULT_RESCAN, PullConfig, parse_duration, parse_file_mode
from objsync.pull.decide import Rules
from objsync.pull.pool import PoolConfig, default_workers
from objsync.push import cli as push_cli
from objsync.s3.config import IN_FLIGHT, Location, RemoteConfig, endpoint_from_env, region_from_env
from objsync.signing import VERIFY_KEYS_ENV, verify_keys_from

ENV_PREFIX = "OBJSYNC_"
FSYNC_MODES = tuple(m.value for m in Fsync)
LOG_LEVELS = ("debug", "info", "warning", "error")


def parse_count(text: str) -> int:
    """A whole number, 0 or more (--workers, --threads)."""
    value = _whole(text, "0 or more")
    if value < 0:
        raise ValueError(f"{text!r} is below 0; use 0 or more")
    return value


def parse_failures(text: str) -> int:
    """--max-failures: a whole number; a negative one means never."""
    return _whole(text, "a count such as 3, or a negative number for never")


def _whole(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number; use {what}") from None


def parse_pins(values: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """`--pin REPO=MANIFEST_ID` values (repeatable or comma-separated) as sorted pairs; raises ValueError."""
    pins: dict[str, str] = {}
    for text in split_patterns(values):
        repo, sep, mid = (part.strip() for part in text.partition("="))
        if not sep:
            raise ValueError(f"--pin {text!r}: use REPO=MANIFEST_ID, e.g. team-dags=3f0c9a1b2d4e5f60")
        check_repo_name(repo)
        check_manifest_id(mid)
        if pins.setdefault(repo, mid) != mid:
            raise ValueError(f"--pin: repo {repo!r} is pinned twice, to {pins[repo]} and {mid}")
    return tuple(sorted(pins.items()))


def fsync_from_env(text: str) -> str:
    """OBJSYNC_FSYNC: a mode, or a boolean as the README shows it (false is none, true is batch)."""
    t = text.strip().lower()
    if t in FSYNC_MODES:
        return t
    if t:
        try:
            return Fsync.BATCH.value if parse_bool(t) else Fsync.NONE.value
        except ValueError:
            pass
    raise ValueError(f"choose from {', '.join(FSYNC_MODES)}, or true (batch) or false (none)")


def _typed(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type that shows the parser's own message, not argparse's `invalid <type> value`."""
    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return convert


class _PullHelp(argparse.HelpFormatter):
    """Names this machine's default --workers only when help is shown: counting CPUs loads psutil."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.dest == "workers":
            return f"worker processes (default {default_workers()} here, from the CPU count; 0 runs in-process)"
        return super()._get_help_string(action)


def add_pull(subparsers) -> tuple[EnvFlag, ...]:
    """Add `pull` with objinsync's flags and objsync's own; returns the environment variables they may come from."""
    pull = subparsers.add_parser("pull", help="mirror s3://BUCKET/PREFIX into LOCAL_DIR, once or continuously",
                                 description="Mirror s3://BUCKET[/PREFIX] into LOCAL_DIR.",
                                 epilog=f"Every option can also come from {ENV_PREFIX}<OPTION>, e.g. "
                                        f"{ENV_PREFIX}INTERVAL=10s or {ENV_PREFIX}FSYNC=false; the command "
                                        "line wins.",
                                 formatter_class=_PullHelp)
    pull.add_argument("remote", metavar="REMOTE_URI", help="s3://BUCKET[/PREFIX]")
    pull.add_argument("local", metavar="LOCAL_DIR", help="destination folder (created if missing)")
    table = FlagTable(pull, ENV_PREFIX)
    add = table.add
    add("-o", "--once", action="store_true", help="pull once, then exit")
    add("-i", "--interval", type=_typed(parse_duration), default=5.0,
        help="time between passes in daemon mode: 500ms, 5s, 1m or seconds (default 5s)")
    add("-e", "--exclude", action="append", default=[], metavar="GLOB",
        help="skip paths matching GLOB (doublestar, relative to the prefix); repeatable or comma-separated")
    add("--include", action="append", default=[], metavar="GLOB",
        help="mirror only paths matching GLOB; repeatable or comma-separated")
    add("--scratch", action="store_true", help="ignore the cache and local files and download everything again")
    add("-m", "--default-file-mode", type=_typed(parse_file_mode), default=0o664, metavar="MODE",
        help="mode of written files (default 0664)")
    add("--endpoint-url", "--s3-endpoint", dest="endpoint_url", metavar="URL",
        help="S3 endpoint (default: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, then AWS)")
    add("--disable-ssl", action="store_true", help="use plain http")
    add("--region", help="S3 region (default: AWS_REGION, the AWS config, else us-east-1)")
    add("-s", "--status-addr", default=":8087",
        help="address of /health and /metrics in daemon mode, or 'off' (default :8087)")
    add("--workers", type=_typed(parse_count), default=None,
        help="worker processes (default: from the CPU count; 0 runs in-process)")
    add("--threads", type=_typed(parse_count), default=IN_FLIGHT,
        help=f"downloads in flight in each running batch (default {IN_FLIGHT}); a batch holds twice as many files")
    add("--connect-timeout", type=_typed(parse_duration), default=10.0, metavar="DURATION",
        help="S3 connect timeout (default 10s)")
    add("--read-timeout", type=_typed(parse_duration), default=30.0, metavar="DURATION",
        help="S3 read timeout: a stalled response fails after this long (default 30s)")
    add("--max-delete", type=_typed(parse_max_delete), default=None, metavar="N|P%",
        help="refuse a pass that would delete more than N files or P%% of the local files "
             "(default: 50%%, and at least 10 files; a percentage rounds up)")
    add("--allow-empty", action="store_true", help="allow an empty listing to delete every local file")
    add("--fsync", choices=FSYNC_MODES, default=Fsync.BATCH.value, env=fsync_from_env,
        help="durability before files are renamed into place: one filesystem sync per batch "
             "(default), an fsync per file, or none")
    add("--no-fsync", dest="fsync", action="store_const", const=Fsync.NONE.value, env=False,
        help="same as --fsync none")
    add("--dry-run", action="store_true", help="print the plan and change nothing")
    add("--json", action="store_true", help="print a JSON summary on stdout at the end")
    add("--max-failures", type=_typed(parse_failures), default=3, metavar="N",
        help="consecutive failed passes before /health turns unhealthy; negative: never (default 3)")
    add("--exec-on-change", metavar="CMD",
        help="run CMD (via the shell) after a pass that changed files; counts are in its environment")
    add("--touch-file", metavar="PATH", help="touch PATH after a pass that changed files")
    add("--log-level", default=None, choices=LOG_LEVELS, help="log level (default info, or debug when DEBUG=1)")
    add("--pin", action="append", default=[], metavar="REPO=MANIFEST_ID",
        help="hold a repo at a version from its manifest history; repeatable")
    add("--rescan-every", type=_typed(parse_duration), default=DEFAULT_RESCAN, metavar="DURATION",
        help="how often to stat every local file while the bucket is unchanged, and in manifest mode to "
             "look for top-level folders without a manifest (default 5m; SIGHUP does it at once)")
    add("--atomic", action="store_true",
        help="publish each top-level folder as a complete new tree behind a symlink, swapped in "
             "one rename, so that a reader never sees two versions of one folder at once")
    add("--keep-snapshots", type=_typed(parse_duration), default=DEFAULT_KEEP, metavar="DURATION",
        help="with --atomic: how long a replaced tree stays for the processes still reading it (default 5m)")
    add("--ignore-manifests", action="store_true",
        help="LIST the whole prefix on every pass and mirror what is listed, even where repos have manifests")
    add("--verify-key", action="append", default=[], metavar="FILE", env=False,
        help="mirror only versions signed by this Ed25519 public key (PEM); repeatable, to rotate keys "
             "(default: OBJSYNC_VERIFY_KEYS, PEM text or comma-separated files)")
    add("--allow-unsigned-folders", action="store_true",
        help="with verify keys: also mirror top-level names without a manifest, unchecked")
    pull.set_defaults(func=pull_command)
    return tuple(table.flags)


class _Registry:
    """Stands in for argparse's subparsers object and keeps each command's parser by name."""

    def __init__(self, subparsers) -> None:
        self._subparsers = subparsers
        self.parsers: dict[str, argparse.ArgumentParser] = {}

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        self.parsers[name] = self._subparsers.add_parser(name, **kwargs)
        return self.parsers[name]


@dataclass(frozen=True)
class CommandLine:
    """The top-level parser, each command's parser, and the environment variables each command reads."""

    parser: argparse.ArgumentParser
    commands: Mapping[str, argparse.ArgumentParser]
    env_flags: Mapping[str, tuple[EnvFlag, ...]]


def build_cli(prog: str = "objsync", with_bench: bool = False) -> CommandLine:
    """objsync's command line; the bench harness loads only when `bench` is asked for."""
    parser = argparse.ArgumentParser(prog=prog, description="Keep a local folder identical to an S3 prefix.")
    parser.add_argument("--version", action="version", version=f"objsync {__version__}")
    registry = _Registry(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    pull_flags = add_pull(registry)
    push_cli.register(registry)
    if with_bench:
        from objsync.bench import cli as bench_cli

        bench_cli.register(registry)
    else:  # listed for --help
        registry.add_parser("bench", help="benchmark objsync against s5cmd, aws s3 sync and rclone")
    return CommandLine(parser, registry.parsers, {"pull": pull_flags})


def parse_args(argv: Sequence[str], env: Mapping[str, str],
               prog: str = "objsync") -> tuple[argparse.Namespace, argparse.ArgumentParser]:
    """The arguments, and the chosen command's parser: its usage goes with every error of that command."""
    cli = build_cli(prog, with_bench=list(argv[:1]) == ["bench"])  # fresh: the environment's defaults go into it
    # The first parse finds the command without reading the environment, so --help and the other
    # commands work whatever a variable of this one holds.
    args = cli.parser.parse_args(argv)
    command = cli.commands[args.command]
    try:
        defaults = env_defaults(cli.env_flags.get(args.command, ()), env)
    except ValueError as exc:
        command.error(str(exc))
    if not defaults:
        return args, command
    # Parsed again with the environment's values as defaults, so that a flag on the command line wins.
    command.set_defaults(**defaults)
    return cli.parser.parse_args(argv), command


def config_from_args(args: argparse.Namespace, env: Mapping[str, str]) -> PullConfig:
    """The pull's frozen config; raises ValueError for a bad value."""
    remote = RemoteConfig(
        endpoint_url=args.endpoint_url or endpoint_from_env(env),
        region=args.region or region_from_env(env),
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
    keys = verify_keys_from(args.verify_key, env) if (args.verify_key or env.get(VERIFY_KEYS_ENV)) else ()
    if keys and args.ignore_manifests:
        raise ValueError("--ignore-manifests cannot go with verify keys: only manifests carry signatures")
    if args.allow_unsigned_folders and not keys:
        raise ValueError("--allow-unsigned-folders needs --verify-key (or OBJSYNC_VERIFY_KEYS)")
    return PullConfig(
        source=Location.parse(args.remote), dest=Path(args.local).absolute(), remote=remote, rules=rules,
        pool=PoolConfig(workers=args.workers, threads=max(1, args.threads)),  # None: counted when needed
        file_mode=args.default_file_mode, fsync=Fsync(args.fsync), once=args.once,
        dry_run=args.dry_run, pins=parse_pins(args.pin),
        rescan_every=args.rescan_every, use_manifests=not args.ignore_manifests, atomic=args.atomic,
        keep_snapshots=args.keep_snapshots, verify_keys=keys, allow_unsigned_folders=args.allow_unsigned_folders)


def daemon_config_from_args(args: argparse.Namespace, env: Mapping[str, str]) -> DaemonConfig:
    """The daemon's frozen config; raises ValueError for a bad status address."""
    status = None if args.status_addr == "off" else args.status_addr
    if status is not None and not args.once:
        parse_addr(status)  # a typo is a usage error now, not a failure after the lock is taken
    return DaemonConfig(
        interval=args.interval, max_failures=args.max_failures, status_addr=status,
        hooks=Hooks(exec_on_change=args.exec_on_change, touch_file=args.touch_file, environ=dict(env)),
        sentry_dsn=env.get("SENTRY_DSN") or None)


def pull_command(args: argparse.Namespace, env: Mapping[str, str], parser: argparse.ArgumentParser) -> int:
    """Build the configs (a bad value is a usage error, exit 2), then run the pull."""
    try:
        cfg, daemon = config_from_args(args, env), daemon_config_from_args(args, env)
    except ValueError as exc:
        parser.error(str(exc))
    from objsync.runner import run_pull  # the pipeline loads only when a pull runs, not for push or --help

    return run_pull(cfg, daemon, as_json=args.json)


def log_level(args: argparse.Namespace, env: Mapping[str, str]) -> str:
    """--log-level, else debug when DEBUG is set (as objinsync does), else info."""
    return getattr(args, "log_level", None) or ("debug" if env.get("DEBUG") not in (None, "", "0") else "info")


def main(argv: Sequence[str] | None = None, prog: str = "objsync") -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    env = dict(os.environ)
    args, parser = parse_args(argv, env, prog)
    logsetup.setup(log_level(args, env))
    return args.func(args, env, parser)


def objinsync_main() -> int:
    """Entry point of the `objinsync` alias: same flags, same behaviour."""
    return main(prog="objinsync")

"""Command line of the publish side: `objsync push ENV` and `objsync promote SRC_ENV DST_ENV`."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from objsync.config import parse_max_delete
from objsync.envs import (Environment, ProjectConfig, git, git_root, load_project, resolve_commit,
                          resolve_repo)
from objsync.paths import Filter, split_patterns
from objsync.push import Report, Target, promote, publish
from objsync.push_plan import PushRules
from objsync.remote import RemoteConfig, make_client
from objsync.source import scan_source

log = logging.getLogger("objsync")


def register(subparsers) -> None:
    """Add the `push` and `promote` commands to the CLI's subparsers."""
    push = subparsers.add_parser(
        "push", help="publish a repo's workflow folder to an environment's bucket",
        description="Upload what changed in the source folder to <prefix>/<repo>/ of ENV, delete what is "
                    "gone, then write the repo's manifest.")
    push.add_argument("env", metavar="ENV", help="environment from objsync.toml or OBJSYNC_ENV_<NAME>_URL, "
                                                 "e.g. dev, staging or production")
    push.add_argument("--source", metavar="DIR",
                      help="folder to publish (default: `source` in objsync.toml, else workflow)")
    push.add_argument("-e", "--exclude", action="append", default=[], metavar="GLOB",
                      help="skip paths matching GLOB, relative to the source; repeatable or comma-separated")
    push.add_argument("--no-compile-check", dest="compile_check", action="store_false",
                      help="publish .py files even when they do not compile")
    _common(push)
    push.set_defaults(func=push_command)

    prom = subparsers.add_parser(
        "promote", help="copy the files of one environment's manifest to another environment",
        description="Copy exactly the files named in SRC_ENV's manifest of the repo to DST_ENV (server-side "
                    "when both share an endpoint), delete stale ones there, then write DST_ENV's manifest.")
    prom.add_argument("src_env", metavar="SRC_ENV", help="environment to promote from")
    prom.add_argument("dst_env", metavar="DST_ENV", help="environment to promote to")
    _common(prom)
    prom.set_defaults(func=promote_command)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repo", metavar="NAME",
                   help="repo name (default: from the CI environment, the git remote, else the folder name)")
    p.add_argument("--max-delete", type=_max_delete, default=None, metavar="N|P%",
                   help="refuse when more than N stale objects, or P%% of the repo's objects, would be deleted")
    p.add_argument("--allow-empty", action="store_true",
                   help="allow publishing no files at all, which deletes every published file of the repo")
    p.add_argument("--threads", type=_threads, default=16, help="concurrent transfers (default 16)")
    p.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout at the end")
    p.add_argument("--log-level", default=None, choices=["debug", "info", "warning", "error"],
                   help="log level (default info, or debug when DEBUG=1)")


def _max_delete(text: str) -> str:
    try:
        return parse_max_delete(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _threads(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number, 1 or more")
    return int(text)


def push_command(args: argparse.Namespace, env: dict[str, str], parser: argparse.ArgumentParser) -> int:
    cwd = Path.cwd()
    project, (target,), origin = _setup(args, env, parser, cwd, [args.env])
    source = project.source_dir(args.source, cwd)
    if not source.is_dir():
        parser.error(f"source folder {source} does not exist; pass --source DIR"
                     + (f" or set source in {project.path}" if project.path else ""))
    shown = os.path.relpath(source, cwd)
    scan = scan_source(source, Filter(excludes=project.excludes + split_patterns(args.exclude)))
    if scan.problems:
        for problem in scan.problems:
            log.error("%s: %s", problem.where(shown), problem.reason)
        log.error("%d files cannot be published, so nothing was; fix or --exclude them", len(scan.problems))
        if args.json:
            _print_json({"errors": [{"key": p.where(shown), "error": p.reason} for p in scan.problems]})
        return 1
    log.info("pushing %d files from %s to %s (repo %r from %s)", len(scan.files), shown,
             target.url(target.folder), target.repo, origin)
    commit = resolve_commit(env, lambda: git(cwd, "rev-parse", "HEAD"))
    rules = PushRules(allow_empty=args.allow_empty, max_delete=args.max_delete)
    try:
        report = publish(make_client(target.remote), target, scan.files, rules, commit=commit,
                         threads=args.threads, dry_run=args.dry_run, compile_check=args.compile_check,
                         source_root=shown)
    except KeyboardInterrupt:
        log.warning("interrupted; the manifest was not written, so it still names the previous version")
        return 130
    return _finish(report, args)


def promote_command(args: argparse.Namespace, env: dict[str, str], parser: argparse.ArgumentParser) -> int:
    _, (src, dst), origin = _setup(args, env, parser, Path.cwd(), [args.src_env, args.dst_env])
    log.info("promoting repo %r (from %s) from %s (%s) to %s (%s)", dst.repo, origin, src.env,
             src.url(src.folder), dst.env, dst.url(dst.folder))
    rules = PushRules(allow_empty=args.allow_empty, max_delete=args.max_delete)
    try:
        report = promote(make_client(src.remote), src, make_client(dst.remote), dst, rules,
                         threads=args.threads, dry_run=args.dry_run)
    except KeyboardInterrupt:
        log.warning("interrupted; the manifest of %s was not written, so it still names the previous version",
                    dst.env)
        return 130
    return _finish(report, args)


def _setup(args: argparse.Namespace, env: dict[str, str], parser: argparse.ArgumentParser, cwd: Path,
           names: list[str]) -> tuple[ProjectConfig, list[Target], str]:
    """The project config, a Target per environment name, and where the repo name came from; usage errors exit 2."""
    try:
        project = load_project(cwd, env)
        environments = [project.environment(name) for name in names]
        repo, origin = resolve_repo(args.repo, env, lambda: git(cwd, "config", "--get", "remote.origin.url"),
                                    git_root(cwd) or cwd)
    except ValueError as exc:
        parser.error(str(exc))
    targets = [Target(e.name, e.location, _remote(e, env, args.threads), repo) for e in environments]
    return project, targets, origin


def _remote(environment: Environment, env: dict[str, str], threads: int) -> RemoteConfig:
    """The environment's endpoint and region, else the AWS_* variables boto3 would use."""
    return RemoteConfig(
        endpoint_url=environment.endpoint_url or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None,
        region=environment.region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
        max_pool_connections=threads + 8,  # large files add a few part uploads of their own
    )


def _finish(report: Report, args: argparse.Namespace) -> int:
    verb = "upload" if report.command == "push" else "copy"
    if args.dry_run and report.plan is not None:
        _print_plan(report, verb)
    for key, error in report.errors:
        log.error("%s: %s", key, error, extra={"key": key})
    if args.json:
        _print_json(report.as_dict() | {"dry_run": bool(args.dry_run)})
    p = report.plan
    if args.dry_run and p is not None:
        counts = f"would {verb} {len(p.transfers)}, keep {len(p.unchanged)}, delete {len(p.deletes)}"
    else:
        counts = (f"{'uploaded' if verb == 'upload' else 'copied'} {report.transferred}, unchanged "
                  f"{report.unchanged}, deleted {report.deleted}")
    log.info("%s %s: %s, manifest %s %s, errors %d in %.2fs", report.command, report.target.env, counts,
             report.manifest_id or "-", report.manifest, len(report.errors), report.seconds,
             extra={"summary": report.as_dict() | {"errors": len(report.errors)}})
    return 0 if report.ok else 1


def _print_plan(report: Report, verb: str) -> None:
    p, t, out = report.plan, report.target, sys.stdout
    for x in p.transfers:
        out.write(f"{verb:<8}{x.file.path}  ({x.reason}, {x.file.size} bytes)\n")
    for key in p.deletes:
        out.write(f"delete  {t.url(key)}\n")
    out.write(f"keep    {len(p.unchanged)} unchanged\n")
    if p.blocked:
        out.write(f"hold    {p.blocked}\n")
    elif report.manifest_id:
        out.write(f"write   {t.url(t.manifest_key)}  (manifest {report.manifest_id})\n")


def _print_json(doc: dict) -> None:
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()

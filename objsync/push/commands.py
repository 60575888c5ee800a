"""What `objsync push` and `objsync promote` do once their arguments are parsed."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import TextIO

from objsync.paths import Filter, split_patterns
from objsync.push.envs import (Environment, ProjectConfig, git, git_root, load_project, resolve_commit, resolve_repo,
                               resolve_source_url)
from objsync.push.plan import PushRules
from objsync.push.promote import promote
from objsync.push.publish import publish
from objsync.push.source import scan_source
from objsync.push.target import Report, Target
from objsync.s3.bucket import Bucket
from objsync.s3.config import RemoteConfig, endpoint_from_env, region_from_env
from objsync.signing import BadKey, SigningKey, signing_key_from

log = logging.getLogger("objsync")


def push_command(args: argparse.Namespace, env: dict[str, str], parser: argparse.ArgumentParser) -> int:
    cwd = Path.cwd()
    project, (target,), origin = _setup(args, env, parser, cwd, [args.env])
    if args.rollback:
        from objsync.push.rollback import rollback

        log.info("rolling back repo %r (from %s) in %s (%s) to version %s", target.repo, origin, target.env,
                 target.url(target.folder), args.rollback)
        with _bucket(target) as bucket:
            return _finish(rollback(bucket, target, args.rollback, threads=args.threads, dry_run=args.dry_run), args)
    signer = _signer(args, env, parser)
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
        with _bucket(target) as bucket:
            report = publish(bucket, target, scan.files, rules, commit=commit, source_url=resolve_source_url(env),
                             threads=args.threads, dry_run=args.dry_run, compile_check=args.compile_check,
                             source_root=shown, signer=signer, pack=args.pack)
    except KeyboardInterrupt:
        log.warning("interrupted; the manifest was not written, so it still names the previous version")
        return 130
    return _finish(report, args)


def promote_command(args: argparse.Namespace, env: dict[str, str], parser: argparse.ArgumentParser) -> int:
    _, (src, dst), origin = _setup(args, env, parser, Path.cwd(), [args.src_env, args.dst_env])
    signer = _signer(args, env, parser)
    log.info("promoting repo %r (from %s) from %s (%s) to %s (%s)", dst.repo, origin, src.env,
             src.url(src.folder), dst.env, dst.url(dst.folder))
    rules = PushRules(allow_empty=args.allow_empty, max_delete=args.max_delete)
    try:
        with _bucket(src) as src_bucket, _bucket(dst) as dst_bucket:
            report = promote(src_bucket, src, dst_bucket, dst, rules, threads=args.threads, dry_run=args.dry_run,
                             signer=signer)
    except KeyboardInterrupt:
        log.warning("interrupted; the manifest of %s was not written, so it still names the previous version",
                    dst.env)
        return 130
    return _finish(report, args)


def _signer(args: argparse.Namespace, env: dict[str, str], parser: argparse.ArgumentParser) -> SigningKey | None:
    """The key to sign with (--sign-key, else OBJSYNC_SIGN_KEY), or None; a key that cannot be used exits 2."""
    try:
        signer = signing_key_from(args.sign_key, env)
    except BadKey as exc:
        parser.error(str(exc))
    if signer is not None:
        log.info("signing with key %s (from %s)", signer.key_id, signer.origin)
    return signer


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
        endpoint_url=environment.endpoint_url or endpoint_from_env(env),
        region=environment.region or region_from_env(env),
        max_pool_connections=threads + 8,  # large files add a few part uploads of their own
    )


def _bucket(target: Target) -> Bucket:
    return Bucket(target.remote, target.bucket)


def _finish(report: Report, args: argparse.Namespace) -> int:
    verb = "upload" if report.command == "push" else "copy"
    if args.dry_run and report.plan is not None:
        _print_plan(report, verb, sys.stderr if args.json else sys.stdout)  # with --json, stdout holds one document
    for key, error in report.errors:
        log.error("%s: %s", key, error, extra={"key": key})
    if args.json:
        _print_json(report.as_dict() | {"dry_run": bool(args.dry_run)})
    p = report.plan
    if report.command == "rollback":
        counts = (f"{report.unchanged} of {report.checked} objects as published, nothing uploaded" if report.checked
                  else "no object checked, nothing uploaded")
    elif args.dry_run and p is not None:
        counts = f"would {verb} {len(p.transfers)}, keep {len(p.unchanged)}, delete {len(p.deletes)}"
    else:
        counts = (f"{'uploaded' if verb == 'upload' else 'copied'} {report.transferred}, unchanged "
                  f"{report.unchanged}, deleted {report.deleted}")
    log.info("%s %s: %s, manifest %s %s, errors %d in %.2fs", report.command, report.target.env, counts,
             report.manifest_id or "-", report.manifest, len(report.errors), report.seconds,
             extra={"summary": report.as_dict() | {"errors": len(report.errors)}})
    return 0 if report.ok else 1


def _print_plan(report: Report, verb: str, out: TextIO) -> None:
    p, t = report.plan, report.target
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

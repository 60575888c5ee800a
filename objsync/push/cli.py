"""Command line of the publish side: `objsync push ENV` and `objsync promote SRC_ENV DST_ENV`.

Only the arguments live here; the commands import their machinery when they run, so `objsync pull`
does not pay for it at start-up.
"""

from __future__ import annotations

import argparse

from objsync.deletecap import parse_max_delete


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
    push.add_argument("--pack", action="store_true",
                      help="also write the version's small files as one compressed object, so that a cold pull "
                           "reads a few objects instead of one per file (manifest schema 4)")
    push.add_argument("--rollback", metavar="MANIFEST_ID", type=_manifest_id,
                      help="make an earlier version from the repo's history current again, uploading nothing; "
                           "refused unless every object it names is still as published")
    _common(push)
    _sign_key(push, "sign the manifest with this Ed25519 private key (PEM)")
    push.set_defaults(func=push_command)

    prom = subparsers.add_parser(
        "promote", help="copy the files of one environment's manifest to another environment",
        description="Copy exactly the files named in SRC_ENV's manifest of the repo to DST_ENV (server-side "
                    "when both share an endpoint), delete stale ones there, then write DST_ENV's manifest.")
    prom.add_argument("src_env", metavar="SRC_ENV", help="environment to promote from")
    prom.add_argument("dst_env", metavar="DST_ENV", help="environment to promote to")
    _common(prom)
    _sign_key(prom, "sign DST_ENV's manifest with this Ed25519 private key (PEM); without it the source's "
                    "signature is kept")
    prom.set_defaults(func=promote_command)

    keygen = subparsers.add_parser(
        "keygen", help="make an Ed25519 key pair for signed versions",
        description="Write a new Ed25519 private key to FILE (mode 0600) and its public key to FILE.pub. "
                    "CI signs with FILE (`push --sign-key`); pulls verify with FILE.pub (`pull --verify-key`).")
    keygen.add_argument("file", metavar="FILE", help="where to write the private key; never overwritten")
    keygen.set_defaults(func=keygen_command)


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


def _sign_key(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--sign-key", metavar="FILE",
                   help=f"{what}; default: OBJSYNC_SIGN_KEY, which holds the PEM itself (a CI secret) or a path")


def _max_delete(text: str) -> str:
    try:
        return parse_max_delete(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _manifest_id(text: str) -> str:
    from objsync.layout import check_manifest_id

    try:
        return check_manifest_id(text.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _threads(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number, 1 or more")
    return int(text)


def push_command(args: argparse.Namespace, env: dict[str, str], parser: argparse.ArgumentParser) -> int:
    from objsync.push.commands import push_command as run

    return run(args, env, parser)


def keygen_command(args: argparse.Namespace, env: dict[str, str], parser: argparse.ArgumentParser) -> int:
    from objsync.signing import BadKey, generate

    try:
        pub, kid = generate(args.file)
    except (BadKey, OSError) as exc:
        parser.error(str(exc))
    print(f"private key: {args.file} (keep it secret: CI signs with it, via --sign-key or OBJSYNC_SIGN_KEY)")
    print(f"public key:  {pub} (give it to every pull: --verify-key {pub}, or OBJSYNC_VERIFY_KEYS)")
    print(f"key id:      {kid}")
    return 0


def promote_command(args: argparse.Namespace, env: dict[str, str], parser: argparse.ArgumentParser) -> int:
    from objsync.push.commands import promote_command as run

    return run(args, env, parser)

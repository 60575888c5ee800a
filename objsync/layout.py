"""Names and places of the publish side: repo and environment names, repo folders, manifests (pure)."""

from __future__ import annotations

import re

from objsync.paths import STATE_DIR, normalize_prefix

_REPO_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_ENV_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,62}")
_MANIFEST_ID = re.compile(r"[0-9a-f]{16}")


MANIFESTS = f"{STATE_DIR}/manifests/"  # under a prefix: one <repo>.json per repo, its published version


def check_repo_name(name: str) -> str:
    """Return `name` if it is a safe namespace name, else raise ValueError saying what is allowed."""
    if not isinstance(name, str) or not _REPO_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a usable repo name: use 1 to 100 letters, digits, '.', '_' "
                         f"or '-', starting with a letter or digit")
    return name


def check_env_name(name: str) -> str:
    """Return `name` if it can name an environment, else raise ValueError."""
    if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not an environment name: use a letter, then letters, digits, '_' or '-'")
    return name


def check_manifest_id(mid: str) -> str:
    """Return `mid` if it has the form of a manifest id (16 lowercase hex digits), else raise ValueError."""
    if not isinstance(mid, str) or not _MANIFEST_ID.fullmatch(mid):
        raise ValueError(f"{mid!r} is not a manifest id (16 lowercase hex digits)")
    return mid


def repo_prefix(prefix: str, repo: str) -> str:
    """The folder of one repo, always with its trailing '/', so repo 'a' never covers 'a-old/'."""
    return normalize_prefix(prefix) + check_repo_name(repo) + "/"


def manifest_key(prefix: str, repo: str) -> str:
    """The repo's current manifest; all repos share one folder, so one LIST sees every manifest."""
    return f"{normalize_prefix(prefix)}{STATE_DIR}/manifests/{check_repo_name(repo)}.json"


def history_key(prefix: str, repo: str, mid: str) -> str:
    """Where one manifest version is kept under its content-derived id."""
    return f"{normalize_prefix(prefix)}{STATE_DIR}/history/{check_repo_name(repo)}/{check_manifest_id(mid)}.json"


def pack_key(prefix: str, repo: str, mid: str) -> str:
    """Where the pack of one version is kept, under its manifest id: never overwritten by another version."""
    return f"{normalize_prefix(prefix)}{STATE_DIR}/packs/{check_repo_name(repo)}/{check_manifest_id(mid)}.pack"

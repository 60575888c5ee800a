"""The per-path policy of a pass: the user's rules, what to do with one listed object, and the delete guard."""

from __future__ import annotations

from dataclasses import dataclass, field

from objsync.deletecap import (
    DEFAULT_DELETE_FLOOR,
    DEFAULT_MAX_DELETE,
    default_max_delete,
    max_delete_count,
)
from objsync.model import Entry, Fetch, LocalFile, RemoteObject, Verify
from objsync.paths import Filter
from objsync.s3.etag import is_md5_etag, multipart_parts


@dataclass(frozen=True)
class Rules:
    """The user's policy for a pass."""

    filter: Filter = field(default_factory=Filter)
    scratch: bool = False
    allow_empty: bool = False
    max_delete: str | None = None  # "N" files or "P%" of the local files; None for the default cap


def decide(rel: str, obj: RemoteObject, entry: Entry | None, lf: LocalFile | None,
            scratch: bool) -> Fetch | None:
    """The fetch that brings `rel` to `obj`, given the cache's entry and the local file; None when it is in place."""
    def fetch(reason: str, verify: Verify | None = None, expect: str = "") -> Fetch:
        return Fetch(obj.key, rel, obj.etag, obj.size, obj.mtime_ns, reason, verify, expect, obj.version_id, obj.md5,
                     obj.sha256, obj.pack)

    if scratch:
        return fetch("scratch")
    if lf is None:
        return fetch("new" if entry is None else "missing locally")
    if lf.is_link:
        return fetch("a symlink is in the way")
    if entry is not None and entry.etag == obj.etag and entry.size == obj.size:
        if lf.size == entry.size and lf.mtime_ns == entry.mtime_ns:
            return None
        if lf.size == entry.size:
            # Touched but maybe not changed: hashing the local file is cheaper than a download.
            return fetch("changed locally", Verify.XXH3, entry.xxh3)
        return fetch("changed locally")
    reason = "changed in bucket" if entry is not None else "not in cache"
    if lf.size != obj.size:
        return fetch(reason)
    if is_md5_etag(obj.etag):
        return fetch(reason, Verify.MD5)
    if multipart_parts(obj.etag):
        return fetch(reason, Verify.MULTIPART)
    return fetch(reason)


def delete_guard(n_delete: int, n_remote: int, n_local: int, rules: Rules) -> str | None:
    """Why this many deletes may not happen, or None when they may."""
    if not n_delete:
        return None
    if n_remote == 0 and not rules.allow_empty:
        return (f"the listing is empty but {n_local} local files exist, so nothing was deleted; "
                f"check the prefix and permissions, or pass --allow-empty if the prefix was emptied on purpose")
    if rules.max_delete is None:
        if n_remote == 0:
            return None  # --allow-empty already says that every local file may go
        cap = default_max_delete(n_local)
    else:
        cap = max_delete_count(rules.max_delete, n_local)
    if n_delete <= cap:
        return None
    if rules.max_delete is None:
        return (f"{n_delete} deletes exceed the default --max-delete ({DEFAULT_MAX_DELETE} of the local files, "
                f"at least {DEFAULT_DELETE_FLOOR}: {cap} of {n_local}), so nothing was deleted; check the prefix, "
                f"or pass --max-delete 100% if this is intended")
    return (f"{n_delete} deletes exceed --max-delete {rules.max_delete} ({cap} of {n_local} local files), so "
            f"nothing was deleted; check the prefix, or raise --max-delete if this is intended")

"""`objsync push ENV --rollback MANIFEST_ID`: make an earlier version current again, uploading nothing.

The version is read from the repo's history. It becomes current only when every object it names
is still readable as it was published: the recorded version (versioned buckets) or the current
object with the recorded ETag. Objects of later versions stay, so a roll forward works the same way.
"""

from __future__ import annotations

import time
from functools import partial

from objsync import __version__
from objsync.manifest import FileEntry, Manifest, ManifestError, now
from objsync.push.manifests import read_manifest, write_manifest
from objsync.push.target import Report, Target
from objsync.push.transfer import run_all
from objsync.s3.bucket import Bucket
from objsync.s3.errors import describe_error, is_missing

SHOWN = 5  # objects named in a refusal; the rest are counted


def rollback(bucket: Bucket, target: Target, manifest_id: str, *, threads: int = 16, dry_run: bool = False) -> Report:
    """Point the repo's current manifest at version `manifest_id` from its history, after checking its objects."""
    started = time.monotonic()
    key = target.history_key(manifest_id)

    def refused(where: str, why: str, checked: int = 0, good: int = 0) -> Report:
        return Report("rollback", target, unchanged=good, seconds=time.monotonic() - started,
                      errors=((where, why),), checked=checked)

    try:
        old = read_manifest(bucket, key)
    except ManifestError as exc:
        return refused(target.url(key), f"cannot roll back: version {manifest_id} in the history is not valid: {exc}")
    except Exception as exc:
        return refused(target.url(key), f"cannot read version {manifest_id}: {describe_error(exc)}")
    if old is None:
        return refused(target.url(key), f"no version {manifest_id} in the history of repo {target.repo!r} in "
                                        f"{target.env}; the ids are the names under "
                                        f"{target.url(key.rpartition('/')[0] + '/')}")
    if old.repo != target.repo or old.id != manifest_id:
        return refused(target.url(key), f"the history entry holds repo {old.repo!r} version {old.id}, not "
                                        f"{target.repo!r} version {manifest_id}; it was copied or altered by hand")
    results, errors = run_all([(f.path, partial(_check, bucket, target, f)) for f in old.files], threads)
    gone = sorted([(f.path, why) for f, why in results if why] + errors)
    if gone:
        listed = "; ".join(f"{path}: {why}" for path, why in gone[:SHOWN])
        more = f" (and {len(gone) - SHOWN} more)" if len(gone) > SHOWN else ""
        return refused(target.url(target.folder), (
            f"cannot roll back to {manifest_id}: {len(gone)} of its {len(old.files)} objects are not as published "
            f"({listed}{more}); check out that version and push it instead"),
            checked=len(old.files), good=len(old.files) - len(gone))
    # The old signature still holds: it covers the files, not the time of writing.
    manifest = Manifest(old.repo, old.files, old.commit, now(), __version__, old.promoted_from,
                        source_url=old.source_url, signature=old.signature, pack=old.pack)
    try:
        current = read_manifest(bucket, target.manifest_key)
    except Exception:
        current = None  # a damaged or unreadable current manifest is what a rollback replaces anyway
    state = "unchanged" if current is not None and current.id == manifest.id else "planned" if dry_run else ""
    if state:
        return Report("rollback", target, unchanged=len(manifest.files), seconds=time.monotonic() - started,
                      manifest_id=manifest.id, manifest=state, checked=len(manifest.files))
    try:
        write_manifest(bucket, manifest, (target.manifest_key,))
    except Exception as exc:
        return refused(target.url(target.manifest_key), f"manifest not written: {describe_error(exc)}",
                       checked=len(manifest.files), good=len(manifest.files))
    return Report("rollback", target, unchanged=len(manifest.files), seconds=time.monotonic() - started,
                  manifest_id=manifest.id, manifest="written", checked=len(manifest.files))


def _check(bucket: Bucket, target: Target, f: FileEntry) -> tuple[FileEntry, str]:
    """(entry, '') when the object is readable exactly as the manifest records it, else (entry, why not)."""
    try:
        head = bucket.head(target.folder + f.path, version_id=f.version_id)
    except Exception as exc:
        if is_missing(exc):
            return f, (f"version {f.version_id} is gone" if f.version_id else "deleted since")
        raise
    if head.etag != f.etag:
        return f, f"ETag is now {head.etag}, not {f.etag} (overwritten since)"
    return f, ""

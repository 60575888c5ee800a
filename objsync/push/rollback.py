"""`objsync push ENV --rollback MANIFEST_ID`: make an earlier version current again, uploading nothing.

The version is read from the repo's history. It becomes current only when every object it names
is still readable as it was published: the recorded version (versioned buckets) or the current
object with the recorded ETag. Objects of later versions stay, so a roll forward works the same way.
"""

from __future__ import annotations

import base64
import hashlib
import time
from functools import partial

from objsync import __version__
from objsync.layout import history_key
from objsync.manifest import FileEntry, Manifest, ManifestError, now
from objsync.push.publish import Report, Target, _run_all, read_manifest
from objsync.s3.errors import describe_error

SHOWN = 5  # objects named in a refusal; the rest are counted


def rollback(client, target: Target, manifest_id: str, *, threads: int = 16, dry_run: bool = False) -> Report:
    """Point the repo's current manifest at version `manifest_id` from its history, after checking its objects."""
    started = time.monotonic()
    key = history_key(target.location.prefix, target.repo, manifest_id)

    def refused(where: str, why: str) -> Report:
        return Report("rollback", target, seconds=time.monotonic() - started, errors=((where, why),))

    try:
        old = read_manifest(client, target.bucket, key)
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
    results, errors = _run_all([(f.path, partial(_check, client, target, f)) for f in old.files], threads)
    gone = sorted([(f.path, why) for f, why in results if why] + errors)
    if gone:
        listed = "; ".join(f"{path}: {why}" for path, why in gone[:SHOWN])
        more = f" (and {len(gone) - SHOWN} more)" if len(gone) > SHOWN else ""
        return refused(target.url(target.folder), (
            f"cannot roll back to {manifest_id}: {len(gone)} of its {len(old.files)} objects are not as published "
            f"({listed}{more}); check out that version and push it instead"))
    manifest = Manifest(old.repo, old.files, old.commit, now(), __version__, old.promoted_from)
    try:
        current = read_manifest(client, target.bucket, target.manifest_key)
    except Exception:
        current = None  # a damaged or unreadable current manifest is what a rollback replaces anyway
    state = "unchanged" if current is not None and current.id == manifest.id else "planned" if dry_run else ""
    if state:
        return Report("rollback", target, unchanged=len(manifest.files), seconds=time.monotonic() - started,
                      manifest_id=manifest.id, manifest=state)
    body = manifest.to_json()
    md5 = base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()
    try:
        client.put_object(Bucket=target.bucket, Key=target.manifest_key, Body=body, ContentMD5=md5,
                          ContentType="application/json")
    except Exception as exc:
        return refused(target.url(target.manifest_key), f"manifest not written: {describe_error(exc)}")
    return Report("rollback", target, unchanged=len(manifest.files), seconds=time.monotonic() - started,
                  manifest_id=manifest.id, manifest="written")


def _check(client, target: Target, f: FileEntry) -> tuple[FileEntry, str]:
    """(entry, '') when the object is readable exactly as the manifest records it, else (entry, why not)."""
    from botocore.exceptions import ClientError

    kwargs = {"Bucket": target.bucket, "Key": target.folder + f.path}
    if f.version_id:
        kwargs["VersionId"] = f.version_id
    try:
        head = client.head_object(**kwargs)
    except ClientError as exc:
        if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
            return f, (f"version {f.version_id} is gone" if f.version_id else "deleted since")
        raise
    etag = head.get("ETag", "").strip('"')
    if etag != f.etag:
        return f, f"ETag is now {etag}, not {f.etag} (overwritten since)"
    return f, ""

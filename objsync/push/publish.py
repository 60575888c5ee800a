"""Push against S3: list, plan, transfer in parallel, delete stale objects, write the manifest last.

`begin` and `finish` are the steps that push and promote share (see objsync.push.promote).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from functools import partial
from typing import Callable, Sequence

from objsync import __version__
from objsync.manifest import FileEntry, Manifest, ManifestError, Signature, now
from objsync.pack import Pack
from objsync.push.manifests import read_manifest, write_manifest
from objsync.push.pack import publish_pack, reader
from objsync.push.plan import PushPlan, PushRules, Transfer, plan_push
from objsync.push.source import SourceFile, compile_problems
from objsync.push.target import Report, Target, report
from objsync.push.transfer import TransferMismatch, run_all, send
from objsync.s3.bucket import Bucket
from objsync.s3.errors import describe_error
from objsync.signing import SigningKey

log = logging.getLogger(__name__)


def publish(bucket: Bucket, target: Target, files: Sequence[SourceFile], rules: PushRules = PushRules(), *,
            commit: str | None = None, source_url: str | None = None, threads: int = 16, dry_run: bool = False,
            compile_check: bool = True, source_root: str = "", signer: SigningKey | None = None,
            pack: bool = False) -> Report:
    """Upload what changed below the target's repo folder, delete what is gone, then write the manifest
    (signed with `signer`, when given, and with a pack of the version's small files when `pack`)."""
    started = time.monotonic()
    begun = begin(bucket, target, "push", started)
    if isinstance(begun, Report):
        return begun
    listing, previous = begun
    entries = [FileEntry(f.rel, f.size, f.etag, f.md5, sha256=f.sha256 if signer or pack else None) for f in files]
    p = plan_push(entries, listing, target.folder, previous, rules)
    if p.blocked:
        return report("push", target, started, p, errors=[(target.url(target.folder), p.blocked)])
    local = {f.rel: f for f in files}
    if compile_check:
        problems = compile_problems([local[t.file.path] for t in p.transfers])
        if problems:
            return report("push", target, started, p, errors=[(pr.where(source_root), pr.reason) for pr in problems])

    def build(published: Sequence[FileEntry]) -> Manifest:
        return sign(Manifest(target.repo, tuple(published), commit, now(), __version__, source_url=source_url),
                    signer)

    def upload(t: Transfer) -> FileEntry:
        with open(local[t.file.path].path, "rb") as fh:
            return send(bucket, t, fh)

    def pack_of(m: Manifest) -> Pack:
        return publish_pack(bucket, target, m, reader({f.rel: f.path for f in files}))

    return finish("push", bucket, target, p, upload, build, previous, threads, dry_run, started,
                  pack_of if pack else None)


def begin(bucket: Bucket, target: Target, command: str, started: float):
    """List the repo folder and read its previous manifest; a Report when that fails."""
    try:
        listing = bucket.list(target.folder)
    except Exception as exc:
        return report(command, target, started, errors=[(target.url(target.folder),
                                                         f"listing failed: {describe_error(exc)}")])
    try:
        previous = read_manifest(bucket, target.manifest_key)
    except ManifestError as exc:
        log.warning("the current manifest %s is not valid (%s); it will be replaced",
                    target.url(target.manifest_key), exc)
        previous = None
    except Exception as exc:
        return report(command, target, started, errors=[(target.url(target.manifest_key),
                                                         f"cannot read the manifest: {describe_error(exc)}")])
    return listing, previous


def finish(command: str, bucket: Bucket, target: Target, p: PushPlan, transfer: Callable[[Transfer], FileEntry],
           build: Callable[[Sequence[FileEntry]], Manifest], previous: Manifest | None, threads: int,
           dry_run: bool, started: float, pack_of: Callable[[Manifest], Pack] | None = None) -> Report:
    """Transfers, then deletes only if all succeeded, then the pack (with `pack_of`), then the manifest:
    history copy first, current last."""
    if dry_run:
        planned = build(list(p.unchanged) + [t.file for t in p.transfers])
        return report(command, target, started, p, transferred=len(p.transfers), deleted=len(p.deletes),
                      nbytes=p.bytes, manifest_id=planned.id, manifest="planned")
    published, errors = run_all([(t.key, partial(transfer, t)) for t in p.transfers], threads)
    nbytes = sum(e.size for e in published)
    if errors:
        log.warning("%d of %d transfers failed, so no stale object was deleted and the manifest was not written",
                    len(errors), len(p.transfers))
        return report(command, target, started, p, transferred=len(published), nbytes=nbytes, errors=errors)
    errors = [(key, f"cannot delete: {why}") for key, why in bucket.delete(p.deletes)]
    deleted = len(p.deletes) - len(errors)
    entries = _with_versions(bucket, target, list(p.unchanged) + published, threads)
    try:
        manifest = build(entries)
        if pack_of is not None:
            manifest = manifest.packed(pack_of(manifest))
    except Exception as exc:
        why = str(exc) if isinstance(exc, (ValueError, TransferMismatch)) else describe_error(exc)
        errors.append((target.url(target.manifest_key), f"manifest not written: {why}"))
        return report(command, target, started, p, transferred=len(published), deleted=deleted, nbytes=nbytes,
                      errors=errors)
    try:
        state = _commit(bucket, target, manifest, previous)
    except Exception as exc:
        errors.append((target.url(target.manifest_key), f"manifest not written: {describe_error(exc)}"))
        state = "not written"
    return report(command, target, started, p, transferred=len(published), deleted=deleted, nbytes=nbytes,
                  manifest_id=manifest.id, manifest=state, errors=errors)


def sign(manifest: Manifest, signer: SigningKey | None) -> Manifest:
    """The manifest signed by `signer`, or as it is without one."""
    if signer is None:
        return manifest
    return manifest.signed(Signature(signer.key_id, signer.sign(manifest.statement())))


def _with_versions(bucket: Bucket, target: Target, entries: list[FileEntry], threads: int) -> list[FileEntry]:
    """Fill in the version ids a listing does not give, when the bucket keeps versions."""
    missing = [e for e in entries if e.version_id is None]
    if not missing or not _versioned(bucket):
        return entries

    def head(e: FileEntry) -> FileEntry:
        stored = bucket.head(target.folder + e.path, etag=e.etag)
        return replace(e, version_id=stored.version_id)

    found, errors = run_all([(target.folder + e.path, partial(head, e)) for e in missing], threads)
    for key, error in errors:
        log.warning("no version id recorded for %s: %s", key, error)
    by_path = {e.path: e for e in found}
    return [by_path.get(e.path, e) for e in entries]


def _versioned(bucket: Bucket) -> bool:
    try:
        status = bucket.versioning()
    except Exception as exc:  # a CI role may lack s3:GetBucketVersioning; version ids are then left out
        log.debug("cannot read the versioning of %s: %s", bucket.name, describe_error(exc))
        return False
    return status in ("Enabled", "Suspended")


def _commit(bucket: Bucket, target: Target, manifest: Manifest, previous: Manifest | None) -> str:
    """Write the history copy, then the current manifest; nothing when the file list is unchanged."""
    if previous is not None and ((previous.files, previous.promoted_from, previous.signature, previous.pack)
                                 == (manifest.files, manifest.promoted_from, manifest.signature, manifest.pack)):
        return "unchanged"
    write_manifest(bucket, manifest, (target.history_key(manifest.id), target.manifest_key))
    return "written"

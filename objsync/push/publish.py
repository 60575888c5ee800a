"""Push and promote against S3: list, plan, transfer in parallel, delete stale objects, write the manifest last."""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import partial
from typing import Callable, Sequence

from objsync import __version__
from objsync.layout import history_key, manifest_key, repo_prefix
from objsync.manifest import FileEntry, Manifest, ManifestError, Origin, now
from objsync.push.plan import PushPlan, PushRules, Transfer, plan_push
from objsync.push.source import SourceFile, compile_problems
from objsync.s3.bucket import list_prefix
from objsync.s3.config import Location, RemoteConfig
from objsync.s3.errors import describe_error
from objsync.s3.etag import MULTIPART_CHUNKSIZE, MULTIPART_THRESHOLD, EtagHasher

log = logging.getLogger(__name__)

_KMS = ("aws:kms", "aws:kms:dsse")  # ETags of KMS-encrypted objects are not the MD5 of the bytes
_MAX_COPY = 5 << 30  # CopyObject's limit; larger objects are streamed
_DELETE_BATCH = 1000


class TransferMismatch(Exception):
    """The bytes sent or stored are not the ones that were planned; the message says which."""


@dataclass(frozen=True)
class Target:
    """One environment's folder for one repo, and how to reach it."""

    env: str
    location: Location
    remote: RemoteConfig
    repo: str

    @property
    def bucket(self) -> str:
        return self.location.bucket

    @property
    def folder(self) -> str:
        return repo_prefix(self.location.prefix, self.repo)

    @property
    def manifest_key(self) -> str:
        return manifest_key(self.location.prefix, self.repo)

    def url(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{key}"


@dataclass(frozen=True)
class Report:
    """The outcome of one push or promote, as `--json` prints it."""

    command: str
    target: Target
    transferred: int = 0
    unchanged: int = 0
    deleted: int = 0
    bytes: int = 0
    seconds: float = 0.0
    manifest_id: str | None = None
    manifest: str = "not written"  # "written", "unchanged", "planned" (dry run) or "not written"
    errors: tuple[tuple[str, str], ...] = ()
    plan: PushPlan | None = field(default=None, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict:
        return {
            "env": self.target.env, "repo": self.target.repo, "destination": self.target.url(self.target.folder),
            "copied" if self.command == "promote" else "uploaded": self.transferred,
            "unchanged": self.unchanged, "deleted": self.deleted, "bytes": self.bytes,
            "seconds": round(self.seconds, 3), "manifest_id": self.manifest_id, "manifest": self.manifest,
            "errors": [{"key": k, "error": e} for k, e in self.errors],
        }


def transfer_config(threads: int = 4):
    """The fixed multipart settings that let a push recompute the ETag of what it uploaded."""
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=MULTIPART_CHUNKSIZE,
                          max_concurrency=threads, use_threads=True)


def read_manifest(client, bucket: str, key: str) -> Manifest | None:
    """The manifest at `key`, or None when there is none; ManifestError when it is not valid."""
    from botocore.exceptions import ClientError

    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise
    with body:
        return Manifest.from_json(body.read())


def publish(client, target: Target, files: Sequence[SourceFile], rules: PushRules = PushRules(), *,
            commit: str | None = None, threads: int = 16, dry_run: bool = False, compile_check: bool = True,
            source_root: str = "") -> Report:
    """Upload what changed below the target's repo folder, delete what is gone, then write the manifest."""
    started = time.monotonic()
    begun = _begin(client, target, "push", started)
    if isinstance(begun, Report):
        return begun
    listing, previous = begun
    entries = [FileEntry(f.rel, f.size, f.etag, f.md5) for f in files]
    p = plan_push(entries, listing, target.folder, previous, rules)
    if p.blocked:
        return _report("push", target, started, p, errors=[(target.url(target.folder), p.blocked)])
    local = {f.rel: f for f in files}
    if compile_check:
        problems = compile_problems([local[t.file.path] for t in p.transfers])
        if problems:
            return _report("push", target, started, p, errors=[(pr.where(source_root), pr.reason) for pr in problems])

    def build(published: Sequence[FileEntry]) -> Manifest:
        return Manifest(target.repo, tuple(published), commit, now(), __version__)

    def upload(t: Transfer) -> FileEntry:
        with open(local[t.file.path].path, "rb") as fh:
            if t.file.size < MULTIPART_THRESHOLD:
                return _put_small(client, target.bucket, t, fh.read())
            return _put_large(client, target.bucket, t, fh)

    return _apply("push", client, target, p, upload, build, previous, threads, dry_run, started)


def promote(src_client, src: Target, dst_client, dst: Target, rules: PushRules = PushRules(), *,
            threads: int = 16, dry_run: bool = False) -> Report:
    """Copy exactly the files of the source manifest to the destination, delete stale ones, write its manifest."""
    started = time.monotonic()
    if (src.remote.effective_endpoint(), src.bucket, src.folder) == (dst.remote.effective_endpoint(), dst.bucket, dst.folder):
        return _report("promote", dst, started, errors=[(dst.url(dst.folder), f"{src.env} and {dst.env} are the "
                                                         f"same location; promote between two environments")])
    try:
        source = read_manifest(src_client, src.bucket, src.manifest_key)
    except ManifestError as exc:
        return _report("promote", dst, started, errors=[(src.url(src.manifest_key), f"invalid manifest: {exc}")])
    except Exception as exc:
        return _report("promote", dst, started, errors=[(src.url(src.manifest_key), describe_error(exc))])
    if source is None:
        return _report("promote", dst, started, errors=[(src.url(src.manifest_key), (
            f"no manifest for repo {src.repo!r} in {src.env}; push it first with `objsync push {src.env}`"))])
    if source.repo != src.repo:
        return _report("promote", dst, started, errors=[(src.url(src.manifest_key), (
            f"the manifest names repo {source.repo!r}, not {src.repo!r}; it was copied or altered by hand"))])
    begun = _begin(dst_client, dst, "promote", started)
    if isinstance(begun, Report):
        return begun
    listing, previous = begun
    p = plan_push(source.files, listing, dst.folder, previous, rules)
    if p.blocked:
        return _report("promote", dst, started, p, errors=[(dst.url(dst.folder), p.blocked)])
    origin = Origin(src.env, str(src.location), source.id)
    server_side = src.remote.effective_endpoint() == dst.remote.effective_endpoint()

    def build(published: Sequence[FileEntry]) -> Manifest:
        return Manifest(dst.repo, tuple(published), source.commit, now(), __version__, origin)

    def copy(t: Transfer) -> FileEntry:
        src_key = src.folder + t.file.path
        if server_side and t.file.size <= _MAX_COPY:
            return _server_copy(dst_client, dst.bucket, src.bucket, src_key, t)
        return _stream_copy(src_client, src.bucket, src_key, dst_client, dst.bucket, t)

    return _apply("promote", dst_client, dst, p, copy, build, previous, threads, dry_run, started)


def _begin(client, target: Target, command: str, started: float):
    """List the repo folder and read its previous manifest; a Report when that fails."""
    try:
        listing = list(list_prefix(client, target.bucket, target.folder))
    except Exception as exc:
        return _report(command, target, started, errors=[(target.url(target.folder),
                                                          f"listing failed: {describe_error(exc)}")])
    try:
        previous = read_manifest(client, target.bucket, target.manifest_key)
    except ManifestError as exc:
        log.warning("the current manifest %s is not valid (%s); it will be replaced",
                    target.url(target.manifest_key), exc)
        previous = None
    except Exception as exc:
        return _report(command, target, started, errors=[(target.url(target.manifest_key),
                                                          f"cannot read the manifest: {describe_error(exc)}")])
    return listing, previous


def _apply(command: str, client, target: Target, p: PushPlan, transfer: Callable[[Transfer], FileEntry],
           build: Callable[[Sequence[FileEntry]], Manifest], previous: Manifest | None, threads: int,
           dry_run: bool, started: float) -> Report:
    """Transfers, then deletes only if all succeeded, then the manifest: history copy first, current last."""
    if dry_run:
        planned = build(list(p.unchanged) + [t.file for t in p.transfers])
        return _report(command, target, started, p, manifest_id=planned.id, manifest="planned")
    published, errors = _run_all([(t.key, partial(transfer, t)) for t in p.transfers], threads)
    nbytes = sum(e.size for e in published)
    if errors:
        log.warning("%d of %d transfers failed, so no stale object was deleted and the manifest was not written",
                    len(errors), len(p.transfers))
        return _report(command, target, started, p, transferred=len(published), nbytes=nbytes, errors=errors)
    deleted, errors = _delete(client, target.bucket, p.deletes)
    entries = _with_versions(client, target, list(p.unchanged) + published, threads)
    manifest = build(entries)
    try:
        state = _commit(client, target, manifest, previous)
    except Exception as exc:
        errors.append((target.url(target.manifest_key), f"manifest not written: {describe_error(exc)}"))
        state = "not written"
    return _report(command, target, started, p, transferred=len(published), deleted=deleted, nbytes=nbytes,
                   manifest_id=manifest.id, manifest=state, errors=errors)


def _report(command: str, target: Target, started: float, p: PushPlan | None = None, *, transferred: int = 0,
            deleted: int = 0, nbytes: int = 0, manifest_id: str | None = None, manifest: str = "not written",
            errors: Sequence[tuple[str, str]] = ()) -> Report:
    return Report(command, target, transferred, len(p.unchanged) if p else 0, deleted, nbytes,
                  time.monotonic() - started, manifest_id, manifest, tuple(errors), p)


def _run_all(jobs: Sequence[tuple[str, Callable[[], FileEntry]]],
             threads: int) -> tuple[list[FileEntry], list[tuple[str, str]]]:
    """Run (key, job) pairs on a thread pool; results, and (key, error) for each job that raised."""
    done: list[FileEntry] = []
    errors: list[tuple[str, str]] = []
    if not jobs:
        return done, errors
    pool = ThreadPoolExecutor(max_workers=max(1, min(threads, len(jobs))))
    try:
        futures = {pool.submit(job): key for key, job in jobs}
        for future in as_completed(futures):
            try:
                done.append(future.result())
            except TransferMismatch as exc:
                errors.append((futures[future], str(exc)))
            except Exception as exc:
                errors.append((futures[future], describe_error(exc)))
    finally:
        # On Ctrl-C, transfers not yet started are dropped instead of run to the end.
        pool.shutdown(wait=True, cancel_futures=True)
    errors.sort()
    return done, errors


def _put_small(client, bucket: str, t: Transfer, data: bytes) -> FileEntry:
    """One PutObject with Content-MD5, so the server itself refuses bytes that differ from the plan."""
    digest = hashlib.md5(data, usedforsecurity=False)
    if len(data) != t.file.size or digest.hexdigest() != t.file.md5:
        raise TransferMismatch(f"{t.file.path} changed since it was checked ({len(data)} bytes, MD5 "
                               f"{digest.hexdigest()}; expected {t.file.size}, {t.file.md5}); run again")
    resp = client.put_object(Bucket=bucket, Key=t.key, Body=data,
                             ContentMD5=base64.b64encode(digest.digest()).decode())
    return _stored(t, resp.get("ETag", ""), resp.get("VersionId"), resp.get("ServerSideEncryption"), (t.file.md5,))


class _HashingReader:
    """A read-only stream that hashes what passes through, so the bytes uploaded are the bytes checked."""

    def __init__(self, raw, size: int) -> None:
        self.raw = raw
        self.hasher = EtagHasher(size)
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        chunk = self.raw.read(n)
        self.hasher.update(chunk)
        self.count += len(chunk)
        return chunk


def _put_large(client, bucket: str, t: Transfer, raw) -> FileEntry:
    """A multipart upload with the fixed part size, checked against the MD5 and ETag of the bytes read."""
    reader = _HashingReader(raw, t.file.size)
    client.upload_fileobj(reader, bucket, t.key, Config=transfer_config())
    md5 = reader.hasher.md5.hexdigest()
    if reader.count != t.file.size or md5 != t.file.md5:
        raise TransferMismatch(f"{t.file.path} changed during the transfer ({reader.count} bytes, MD5 {md5}; "
                               f"expected {t.file.size}, {t.file.md5}); run again")
    head = client.head_object(Bucket=bucket, Key=t.key)
    return _stored(t, head.get("ETag", ""), head.get("VersionId"), head.get("ServerSideEncryption"),
                   (reader.hasher.etag(),))


def _server_copy(client, bucket: str, src_bucket: str, src_key: str, t: Transfer) -> FileEntry:
    """CopyObject of the exact version the manifest names, or of the object only while its ETag matches."""
    source = {"Bucket": src_bucket, "Key": src_key}
    extra = {}
    if t.file.version_id:
        source["VersionId"] = t.file.version_id
    else:
        extra["CopySourceIfMatch"] = f'"{t.file.etag}"'
    resp = client.copy_object(Bucket=bucket, Key=t.key, CopySource=source, **extra)
    etag = resp.get("CopyObjectResult", {}).get("ETag", "")
    return _stored(t, etag, resp.get("VersionId"), resp.get("ServerSideEncryption"), (t.file.etag, t.file.md5))


def _stream_copy(src_client, src_bucket: str, src_key: str, client, bucket: str, t: Transfer) -> FileEntry:
    """GET from one endpoint and PUT to another; the MD5 check proves the bytes are the manifest's."""
    pin = {"VersionId": t.file.version_id} if t.file.version_id else {"IfMatch": f'"{t.file.etag}"'}
    body = src_client.get_object(Bucket=src_bucket, Key=src_key, **pin)["Body"]
    with body:
        if t.file.size < MULTIPART_THRESHOLD:
            return _put_small(client, bucket, t, body.read())
        return _put_large(client, bucket, t, body)


def _stored(t: Transfer, etag: str, version_id: str | None, sse: str | None, expected: tuple[str, ...]) -> FileEntry:
    etag = etag.strip('"')
    if sse not in _KMS and etag.lower() not in expected:
        raise TransferMismatch(f"the server reports ETag {etag!r} for {t.key}, expected {expected[0]!r}: "
                               f"another writer changed it during the transfer; run again")
    return FileEntry(t.file.path, t.file.size, etag, t.file.md5, version_id)


def _delete(client, bucket: str, keys: Sequence[str]) -> tuple[int, list[tuple[str, str]]]:
    deleted = 0
    errors: list[tuple[str, str]] = []
    for i in range(0, len(keys), _DELETE_BATCH):
        batch = keys[i:i + _DELETE_BATCH]
        try:
            resp = client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
        except Exception as exc:
            errors += [(k, f"cannot delete: {describe_error(exc)}") for k in batch]
            continue
        failed = [(e.get("Key", "?"), f"cannot delete: {e.get('Code')} {e.get('Message', '')}".strip())
                  for e in resp.get("Errors", ())]
        errors += failed
        deleted += len(batch) - len(failed)
    return deleted, errors


def _with_versions(client, target: Target, entries: list[FileEntry], threads: int) -> list[FileEntry]:
    """Fill in the version ids a listing does not give, when the bucket keeps versions."""
    missing = [e for e in entries if e.version_id is None]
    if not missing or not _versioned(client, target.bucket):
        return entries

    def head(e: FileEntry) -> FileEntry:
        resp = client.head_object(Bucket=target.bucket, Key=target.folder + e.path, IfMatch=f'"{e.etag}"')
        return FileEntry(e.path, e.size, e.etag, e.md5, resp.get("VersionId"))

    found, errors = _run_all([(target.folder + e.path, partial(head, e)) for e in missing], threads)
    for key, error in errors:
        log.warning("no version id recorded for %s: %s", key, error)
    by_path = {e.path: e for e in found}
    return [by_path.get(e.path, e) for e in entries]


def _versioned(client, bucket: str) -> bool:
    try:
        status = client.get_bucket_versioning(Bucket=bucket).get("Status")
    except Exception as exc:  # a CI role may lack s3:GetBucketVersioning; version ids are then left out
        log.debug("cannot read the versioning of %s: %s", bucket, describe_error(exc))
        return False
    return status in ("Enabled", "Suspended")


def _commit(client, target: Target, manifest: Manifest, previous: Manifest | None) -> str:
    """Write the history copy, then the current manifest; nothing when the file list is unchanged."""
    if previous is not None and (previous.files, previous.promoted_from) == (manifest.files, manifest.promoted_from):
        return "unchanged"
    body = manifest.to_json()
    md5 = base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()
    for key in (history_key(target.location.prefix, target.repo, manifest.id), target.manifest_key):
        client.put_object(Bucket=target.bucket, Key=key, Body=body, ContentMD5=md5, ContentType="application/json")
    return "written"

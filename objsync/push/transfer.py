"""Moving one planned file into the bucket, by upload or copy, and proving the server holds those bytes."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import BinaryIO, Callable, Sequence, TypeVar

from objsync.manifest import FileEntry
from objsync.push.plan import Transfer
from objsync.s3.bucket import Bucket
from objsync.s3.errors import describe_error
from objsync.s3.etag import KMS, MULTIPART_THRESHOLD
from objsync.s3.records import Buffer, Stored

MAX_COPY = 5 << 30  # CopyObject's limit; larger objects are streamed

T = TypeVar("T")


class TransferMismatch(Exception):
    """The bytes sent or stored are not the ones that were planned; the message says which."""


def run_all(jobs: Sequence[tuple[str, Callable[[], T]]], threads: int) -> tuple[list[T], list[tuple[str, str]]]:
    """Run (key, job) pairs on a thread pool; the results, and (key, error) for each job that raised."""
    done: list[T] = []
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


def send(bucket: Bucket, t: Transfer, raw: BinaryIO) -> FileEntry:
    """Store the bytes of `raw` at the transfer's key: one PUT when small, else a multipart upload."""
    if t.file.size < MULTIPART_THRESHOLD:
        return _put(bucket, t, raw.read())
    sent = bucket.upload(t.key, raw, t.file.size)
    if sent.size != t.file.size or sent.md5 != t.file.md5:
        raise TransferMismatch(f"{t.file.path} changed during the transfer ({sent.size} bytes, MD5 {sent.md5}; "
                               f"expected {t.file.size}, {t.file.md5}); run again")
    return stored_entry(t, sent.stored, (sent.etag,))


def _put(bucket: Bucket, t: Transfer, data: bytes) -> FileEntry:
    """One PUT, after checking the bytes are the planned ones; Content-MD5 covers the way to the server."""
    md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
    if len(data) != t.file.size or md5 != t.file.md5:
        raise TransferMismatch(f"{t.file.path} changed since it was checked ({len(data)} bytes, MD5 "
                               f"{md5}; expected {t.file.size}, {t.file.md5}); run again")
    return stored_entry(t, bucket.put(t.key, data), (t.file.md5,))


def copy(src: Bucket, src_key: str, dst: Bucket, t: Transfer, server_side: bool) -> FileEntry:
    """Copy the version the manifest names (or the object while its ETag is the manifest's) to `dst`.

    On one endpoint the server copies; between endpoints the bytes are streamed, and the MD5 check
    proves they are the manifest's.
    """
    etag = "" if t.file.version_id else t.file.etag
    if server_side and t.file.size <= MAX_COPY:
        stored = dst.copy(t.key, src.name, src_key, etag, t.file.version_id)
        return stored_entry(t, stored, (t.file.etag, t.file.md5))
    if t.file.size < MULTIPART_THRESHOLD:
        body = Buffer()
        src.read(src_key, etag, t.file.size, body.write, t.file.version_id)
        return _put(dst, t, body.getvalue())
    with src.open(src_key, etag, t.file.version_id) as raw:
        return send(dst, t, raw)


def stored_entry(t: Transfer, stored: Stored, expected: tuple[str, ...]) -> FileEntry:
    """The manifest entry of what the server stored; TransferMismatch when its ETag is not one expected."""
    etag = stored.etag
    if stored.sse not in KMS and etag.lower() not in expected:
        raise TransferMismatch(f"the server reports ETag {etag!r} for {t.key}, expected {expected[0]!r}: "
                               f"another writer changed it during the transfer; run again")
    return replace(t.file, etag=etag, version_id=stored.version_id)

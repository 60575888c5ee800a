"""The pack of a version: its small files in one object beside the manifest (see objsync.pack), written before it."""

from __future__ import annotations

import hashlib
import io
from typing import Callable, Mapping

from objsync.manifest import FileEntry, Manifest
from objsync.pack import Pack, build, members
from objsync.push.target import Target
from objsync.push.transfer import TransferMismatch
from objsync.s3.bucket import Bucket
from objsync.s3.errors import is_missing
from objsync.s3.etag import MULTIPART_THRESHOLD


def publish_pack(bucket: Bucket, target: Target, manifest: Manifest, read: Callable[[FileEntry], bytes]) -> Pack:
    """Write the pack of `manifest` (the bytes of each member from `read`), unless the bucket holds it already.

    Each member's bytes are checked against the manifest's MD5 first: a file changed since it was
    published fails the push instead of going into the pack.
    """
    files = manifest.files
    chosen = [files[i] for i in members([(f.path, f.size) for f in files])]
    data, segments = build((_checked(f, read(f)) for f in chosen), [f.size for f in chosen])
    key = target.pack_key(manifest.id)
    md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
    try:
        held = bucket.head(key)
        if held.etag.lower() == md5:
            return Pack(held.etag, len(data), segments, version_id=held.version_id)
    except Exception as exc:
        if not is_missing(exc):
            raise
    if len(data) < MULTIPART_THRESHOLD:
        stored = bucket.put(key, data)
    else:
        sent = bucket.upload(key, io.BytesIO(data), len(data))
        if sent.md5 != md5:
            raise TransferMismatch(f"the pack {key} was not sent as built; run again")
        stored = sent.stored
    return Pack(stored.etag, len(data), segments, version_id=stored.version_id)


def copy_pack(src: Bucket, src_key: str, pack: Pack, dst: Bucket, dst_key: str, server_side: bool) -> Pack:
    """The source's pack, copied to `dst_key` (by the server on one endpoint, else streamed)."""
    etag = "" if pack.version_id else pack.etag
    if server_side:
        stored = dst.copy(dst_key, src.name, src_key, etag, pack.version_id)
    else:
        with src.open(src_key, etag, pack.version_id) as raw:
            sent = dst.upload(dst_key, raw, pack.size)
        stored = sent.stored
    return Pack(stored.etag, pack.size, pack.segments, pack.max_file, stored.version_id, pack.format)


def reader(local: Mapping[str, str]) -> Callable[[FileEntry], bytes]:
    """Read a published file's bytes from the source folder, by its manifest path."""
    def read(f: FileEntry) -> bytes:
        with open(local[f.path], "rb") as fh:
            return fh.read()
    return read


def _checked(f: FileEntry, data: bytes) -> bytes:
    if len(data) != f.size or hashlib.md5(data, usedforsecurity=False).hexdigest() != f.md5:
        raise TransferMismatch(f"{f.path} changed since it was published ({len(data)} bytes; expected {f.size}); "
                               f"run again")
    return data

"""A repo's manifests in the bucket: read one, write one (the commit point of a push)."""

from __future__ import annotations

from typing import Sequence

from objsync.manifest import Manifest
from objsync.s3.bucket import Bucket
from objsync.s3.errors import is_missing
from objsync.s3.records import Buffer


def read_manifest(bucket: Bucket, key: str) -> Manifest | None:
    """The manifest at `key`, or None when there is none; ManifestError when it is not valid."""
    body = Buffer()
    try:
        bucket.read(key, "", 0, body.write)
    except Exception as exc:
        if is_missing(exc):
            return None
        raise
    return Manifest.from_json(body.getvalue())


def write_manifest(bucket: Bucket, manifest: Manifest, keys: Sequence[str]) -> None:
    """Write the manifest to each key in turn, with Content-MD5, so a damaged body is refused."""
    body = manifest.to_json()
    for key in keys:
        bucket.put(key, body, content_type="application/json")

"""The boto3 transport: every S3 call objsync makes through a client, with botocore's retries and errors."""

from __future__ import annotations

import base64
import hashlib
from typing import BinaryIO, Iterator, Sequence

from objsync.model import RemoteObject
from objsync.s3.etag import MULTIPART_CHUNKSIZE, MULTIPART_THRESHOLD, EtagHasher
from objsync.s3.errors import describe_error
from objsync.s3.records import ReadInfo, Stored, Uploaded, listed, passed_without

DELETE_BATCH = 1000  # DeleteObjects' limit


def list_prefix(client, bucket: str, prefix: str, page_size: int = 1000) -> Iterator[RemoteObject]:
    """Yield every object under `prefix`, page by page, as RemoteObject records."""
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": page_size}):
        yield from _objects(page)


def list_page(client, bucket: str, prefix: str, token: str | None,
              page_size: int = 1000) -> tuple[list[RemoteObject], str | None]:
    """One page of a listing and the next page's token (None after the last)."""
    kwargs = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": page_size}
    if token:
        kwargs["ContinuationToken"] = token
    page = client.list_objects_v2(**kwargs)
    return _objects(page), page.get("NextContinuationToken") if page.get("IsTruncated") else None


def _objects(page: dict) -> list[RemoteObject]:
    """The objects of one ListObjectsV2 answer, as records."""
    return [listed(item["Key"], item.get("ETag", ""), item.get("Size", 0), item["LastModified"])
            for item in page.get("Contents", ())]


def list_level(client, bucket: str, prefix: str, needs: str | None = None) -> tuple[list[RemoteObject], list[str]]:
    """The objects directly under `prefix` and its sub-folder prefixes, with Delimiter='/' (see Bucket)."""
    objects: list[RemoteObject] = []
    folders: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        found = _objects(page)
        objects += found
        here = [p["Prefix"] for p in page.get("CommonPrefixes", ())]
        folders += here
        if needs is not None and passed_without(needs, folders, [o.key for o in found[-1:]] + here[-1:]):
            break
    return objects, folders


def _pin(etag: str, version_id: str | None, match: str = "IfMatch") -> dict[str, str]:
    """If-Match makes a concurrent overwrite fail rather than mix; a version id names the bytes exactly."""
    pin = {match: f'"{etag}"'} if etag else {}
    if version_id:
        pin["VersionId"] = version_id
    return pin


def read_object(client, bucket: str, key: str, etag: str, sink, chunk_size: int = 1 << 20,
                version_id: str | None = None, span: tuple[int, int] | None = None) -> ReadInfo:
    """Stream one object (or the bytes [start, end) of it) into `sink(bytes)`."""
    extra = {"Range": f"bytes={span[0]}-{span[1] - 1}"} if span else {}
    response = client.get_object(Bucket=bucket, Key=key, **_pin(etag, version_id), **extra)
    body = response["Body"]
    try:
        for chunk in body.iter_chunks(chunk_size):
            sink(chunk)
    finally:
        body.close()
    return ReadInfo(
        size=int(response.get("ContentLength", -1)),
        etag=str(response.get("ETag", "")).strip('"'),
        sse=response.get("ServerSideEncryption"),
    )


def read_if_changed(client, bucket: str, key: str, etag: str) -> tuple[bytes, str] | None:
    """The object's bytes and ETag, or None when its ETag is still `etag` (a 304: one request either way)."""
    from botocore.exceptions import ClientError

    try:
        response = client.get_object(Bucket=bucket, Key=key, **_pin(etag, None, "IfNoneMatch"))
    except ClientError as exc:
        if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 304:
            return None
        raise
    with response["Body"] as body:
        return body.read(), str(response.get("ETag", "")).strip('"')


def open_object(client, bucket: str, key: str, etag: str = "", version_id: str | None = None) -> BinaryIO:
    """The object's body as a stream to read and close."""
    return client.get_object(Bucket=bucket, Key=key, **_pin(etag, version_id))["Body"]


def _stored(response: dict, etag: str | None = None) -> Stored:
    return Stored(str(etag if etag is not None else response.get("ETag", "")).strip('"'),
                  response.get("VersionId"), response.get("ServerSideEncryption"))


def head_object(client, bucket: str, key: str, etag: str = "", version_id: str | None = None) -> Stored:
    """What the server holds at `key` (of one version, or only while its ETag is `etag`)."""
    return _stored(client.head_object(Bucket=bucket, Key=key, **_pin(etag, version_id)))


def content_md5(body: bytes) -> str:
    """The Content-MD5 header of `body`: with it the server refuses bytes damaged on the way."""
    return base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()


def put_object(client, bucket: str, key: str, body: bytes, content_type: str | None = None) -> Stored:
    """One PutObject with Content-MD5."""
    extra = {"ContentType": content_type} if content_type else {}
    return _stored(client.put_object(Bucket=bucket, Key=key, Body=body, ContentMD5=content_md5(body), **extra))


def transfer_config(threads: int = 4):
    """The fixed multipart settings that let the uploader recompute the ETag of what it uploaded."""
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=MULTIPART_CHUNKSIZE,
                          max_concurrency=threads, use_threads=True)


class _HashingReader:
    """A read-only stream that hashes what passes through, so what was sent is known exactly."""

    def __init__(self, raw: BinaryIO, size: int) -> None:
        self.raw = raw
        self.hasher = EtagHasher(size)
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        chunk = self.raw.read(n)
        self.hasher.update(chunk)
        self.count += len(chunk)
        return chunk


def upload(client, bucket: str, key: str, fileobj: BinaryIO, size: int) -> Uploaded:
    """A multipart upload with the fixed part size, then a HEAD for what the server stored."""
    reader = _HashingReader(fileobj, size)
    client.upload_fileobj(reader, bucket, key, Config=transfer_config())
    stored = head_object(client, bucket, key)
    return Uploaded(stored, reader.count, reader.hasher.md5.hexdigest(), reader.hasher.etag())


def copy_object(client, bucket: str, key: str, src_bucket: str, src_key: str, etag: str = "",
                version_id: str | None = None) -> Stored:
    """CopyObject of one version, or of the current object only while its ETag is `etag`."""
    source = {"Bucket": src_bucket, "Key": src_key}
    extra = {}
    if version_id:
        source["VersionId"] = version_id
    if etag:
        extra["CopySourceIfMatch"] = f'"{etag}"'
    resp = client.copy_object(Bucket=bucket, Key=key, CopySource=source, **extra)
    return _stored(resp, resp.get("CopyObjectResult", {}).get("ETag", ""))


def delete_objects(client, bucket: str, keys: Sequence[str]) -> list[tuple[str, str]]:
    """Delete `keys` in batches; (key, why) for each one not deleted."""
    failed: list[tuple[str, str]] = []
    for i in range(0, len(keys), DELETE_BATCH):
        batch = keys[i:i + DELETE_BATCH]
        try:
            resp = client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
        except Exception as exc:
            failed += [(k, describe_error(exc)) for k in batch]
            continue
        failed += [(e.get("Key", "?"), f"{e.get('Code')} {e.get('Message', '')}".strip()) for e in resp.get("Errors", ())]
    return failed


def versioning(client, bucket: str) -> str | None:
    """The bucket's versioning status: 'Enabled', 'Suspended', or None when it was never turned on."""
    return client.get_bucket_versioning(Bucket=bucket).get("Status")

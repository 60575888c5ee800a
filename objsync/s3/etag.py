"""ETags computed from bytes: the MD5, and the multipart ETag that boto3 produces for a given part size."""

from __future__ import annotations

import hashlib

MIB = 1 << 20
# objsync uploads with this threshold and part size, so it can recompute the ETag of what it uploaded.
MULTIPART_THRESHOLD = 8 * MIB
MULTIPART_CHUNKSIZE = 8 * MIB


def part_size(size: int, chunksize: int = MULTIPART_CHUNKSIZE) -> int:
    """The part size boto3 really uses for a file of `size` bytes (it grows past 10,000 parts)."""
    from s3transfer.utils import ChunksizeAdjuster

    return ChunksizeAdjuster().adjust_chunksize(chunksize, size)


def multipart_etag(part_digests: list[bytes]) -> str:
    """S3's ETag of a multipart upload: MD5 of the concatenated part MD5s, then '-' and the part count."""
    return f"{hashlib.md5(b''.join(part_digests), usedforsecurity=False).hexdigest()}-{len(part_digests)}"


class EtagHasher:
    """Feed the bytes of a file of known size; get its MD5 and the ETag an upload by objsync gets."""

    def __init__(self, size: int, threshold: int = MULTIPART_THRESHOLD, chunksize: int = MULTIPART_CHUNKSIZE):
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.part = part_size(size, chunksize) if size >= threshold else 0
        self._part_md5 = hashlib.md5(usedforsecurity=False)
        self._part_fill = 0
        self._digests: list[bytes] = []

    def update(self, chunk: bytes) -> None:
        self.md5.update(chunk)
        if not self.part:
            return
        view = memoryview(chunk)
        while view:
            piece = view[: self.part - self._part_fill]
            self._part_md5.update(piece)
            self._part_fill += len(piece)
            view = view[len(piece):]
            if self._part_fill == self.part:
                self._digests.append(self._part_md5.digest())
                self._part_md5, self._part_fill = hashlib.md5(usedforsecurity=False), 0

    def etag(self) -> str:
        """The plain MD5 below the threshold, else the multipart ETag."""
        if not self.part:
            return self.md5.hexdigest()
        tail = [self._part_md5.digest()] if self._part_fill else []
        return multipart_etag(self._digests + tail)


KMS = ("aws:kms", "aws:kms:dsse")  # ETags of KMS-encrypted objects are not the MD5 of the bytes


def is_md5_etag(etag: str) -> bool:
    """True when the ETag can be an MD5 of the bytes (single-part upload)."""
    return len(etag) == 32 and all(c in "0123456789abcdef" for c in etag.lower())


def multipart_parts(etag: str) -> int | None:
    """The part count of a multipart ETag such as '…-3', or None for any other form."""
    head, sep, tail = etag.rpartition("-")
    if sep and tail.isdigit() and is_md5_etag(head):
        return int(tail)
    return None


def damage(body: bytes, etag: str, sse: str | None = None) -> str:
    """Why `body` cannot be the object of this single-part ETag ('' when it can, or when the ETag is no MD5)."""
    if not is_md5_etag(etag) or sse in KMS:
        return ""
    found = hashlib.md5(body, usedforsecurity=False).hexdigest()
    return "" if found == etag.lower() else f"MD5 {found}, ETag {etag}"

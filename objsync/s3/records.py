"""What the Bucket takes and gives back, shared by both transports; no I/O here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

from objsync.model import RemoteObject


class Sink(Protocol):
    """Where the bytes of one read attempt go."""

    def write(self, chunk: bytes) -> object:
        """Take the next chunk; raising aborts the read, and the read is not repeated."""

    def discard(self) -> None:
        """Drop what this attempt received: the attempt failed, or was cancelled."""


class Buffer:
    """A Sink in memory."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, chunk: bytes) -> None:
        self.chunks.append(chunk)

    def discard(self) -> None:
        self.chunks.clear()

    def getvalue(self) -> bytes:
        return b"".join(self.chunks)


@dataclass(frozen=True, slots=True)
class ReadInfo:
    """What the server said about an object it sent: length, ETag and server-side encryption."""

    size: int
    etag: str
    sse: str | None


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """One object to read in a batch; `open_sink()` gives a fresh sink for each attempt."""

    key: str
    etag: str
    open_sink: Callable[[], Sink]
    version_id: str | None = None


@dataclass(frozen=True, slots=True)
class SpanRequest:
    """The bytes [start, end) of one object (of one version, or only while its ETag is `etag`), for `write`."""

    key: str
    etag: str
    start: int
    end: int
    write: Callable[[bytes], object]
    version_id: str | None = None


class Cancelled(Exception):
    """The read was dropped because the caller is stopping."""


@dataclass(frozen=True, slots=True)
class ReadResult:
    """How one read of a batch ended: the sink that holds the object, or the error of the last attempt."""

    info: ReadInfo | None = None
    sink: Sink | None = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.info is not None


@dataclass(frozen=True, slots=True)
class Stored:
    """What the server reports about an object it holds: ETag (without quotes), version and encryption."""

    etag: str
    version_id: str | None = None
    sse: str | None = None


@dataclass(frozen=True, slots=True)
class Uploaded:
    """A multipart upload: what was stored, and the size, MD5 and expected ETag of the bytes sent."""

    stored: Stored
    size: int
    md5: str
    etag: str


def passed_without(folder: str, folders: Sequence[str], page_ends: Sequence[str]) -> bool:
    """True when a listing by Delimiter='/' has passed `folder` in key order (a page ended at or after it)
    without showing it: listings are sorted, so it does not exist."""
    return folder not in folders and any(end >= folder for end in page_ends)


def listed(key: str, etag: str, size, last_modified) -> RemoteObject:
    """A listing entry as a record; Last-Modified is kept to the millisecond S3 reports."""
    return RemoteObject(key=key, etag=etag.strip('"'), size=int(size or 0),
                        mtime_ns=round(last_modified.timestamp() * 1000) * 1_000_000)

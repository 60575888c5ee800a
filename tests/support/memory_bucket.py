"""An S3 bucket in memory, with the part of the `Bucket` interface that a pull uses, for unit tests only.

It stands in for S3 and for nothing of objsync's own: the real planner, writer and publishers run
against it. It answers as S3 does where a pull can tell: ETags are the MD5 of the bytes, listings
come in key order with Last-Modified to the millisecond, If-Match and VersionId are honoured, and
errors are botocore `ClientError`s with S3's codes, so objsync.s3.errors reads them as it reads
real ones. Sync behaviour itself is still proven against SeaweedFS.

Faults are placed by hand: `broken` keys fail every read with a 500, `damaged` ones deliver one
changed byte once (through `read`), and `before_read` runs before each GET is served (to change the object under it, or to set a stop event mid-pass).
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Sequence

from botocore.exceptions import ClientError

from objsync.model import RemoteObject
from objsync.s3.pages import PAGES, Pages, objects_digest
from objsync.s3.records import Cancelled, ReadInfo, ReadRequest, ReadResult, Stored, listed

# S3's own words, as a GET's error body carries them (a HEAD has no body: its code is the status).
_MESSAGES = {
    "NoSuchKey": (404, "The specified key does not exist."),
    "NoSuchVersion": (404, "The specified version does not exist."),
    "PreconditionFailed": (412, "At least one of the pre-conditions you specified did not hold"),
    "InternalError": (500, "We encountered an internal error. Please try again."),
}


def s3_error(code: str, operation: str = "GetObject") -> ClientError:
    """The ClientError botocore raises for S3's `code` (a HEAD's is named by its status alone)."""
    status, message = _MESSAGES[code]
    if operation == "HeadObject":
        code, message = str(status), ""
    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, operation)


@dataclass(frozen=True, slots=True)
class Version:
    """One stored version of an object."""

    body: bytes
    etag: str
    last_modified: datetime
    version_id: str | None


@dataclass(frozen=True, slots=True)
class Request:
    """One request the bucket answered: LIST (target: the prefix), GET, HEAD, PUT or DELETE (the key)."""

    op: str
    target: str


class MemoryBucket:
    """A bucket in memory; `requests` records every request, in order, for tests that count them.

    With `versioned`, every write keeps the versions before it readable by VersionId, and a delete
    leaves them too (S3 puts a delete marker on top).
    """

    def __init__(self, name: str = "memory", *, versioned: bool = True) -> None:
        self.name = name
        self.versioned = versioned
        self.fallbacks = 0  # the real Bucket counts fast-path reads repeated through boto3; there are none here
        self.requests: list[Request] = []
        self.broken: set[str] = set()  # keys whose every read fails with a 500, until removed
        self.damaged: set[str] = set()  # keys whose next GET delivers one byte changed, as a bad network would
        self.before_read: Callable[[str], None] | None = None  # runs with the key before each GET is served
        self._current: dict[str, Version] = {}
        self._history: dict[str, list[Version]] = {}
        self._ids = itertools.count(1)

    # -- what tests set up and look at ------------------------------------------------------------

    def put_many(self, objects: dict[str, bytes]) -> None:
        for key, body in objects.items():
            self.put(key, body)

    def body(self, key: str) -> bytes:
        return self._current[key].body

    # -- the Bucket interface ---------------------------------------------------------------------

    def list(self, prefix: str) -> list[RemoteObject]:
        self.requests.append(Request("LIST", prefix))
        return [self._listed(key) for key in sorted(self._current) if key.startswith(prefix)]

    def unchanged(self, prefix: str, known: str) -> bool:
        return known == PAGES + objects_digest(self.list(prefix))  # as `pages` fingerprints it

    def page(self, prefix: str, token: str | None) -> tuple[list[RemoteObject], str | None, str]:
        """The whole listing as one page."""
        objects = self.list(prefix)
        return objects, None, objects_digest(objects)

    def pages(self, prefix: str) -> Pages:
        return Pages(self.page, prefix)

    def list_level(self, prefix: str, needs: str | None = None) -> tuple[list[RemoteObject], list[str]]:
        """Objects directly under `prefix`, and sub-folders as 'prefix/name/' (Delimiter='/'), on one page:
        `needs` changes nothing."""
        self.requests.append(Request("LIST", prefix))
        objects, folders = [], []
        for key in sorted(self._current):
            if not key.startswith(prefix):
                continue
            name, slash, _ = key[len(prefix):].partition("/")
            if not slash:
                objects.append(self._listed(key))
            elif prefix + name + "/" not in folders:
                folders.append(prefix + name + "/")
        return objects, folders

    def read(self, key: str, etag: str, size: int, sink: Callable[[bytes], object],
             version_id: str | None = None) -> ReadInfo:
        self.requests.append(Request("GET", key))
        if self.before_read is not None:
            self.before_read(key)
        if key in self.broken:
            raise s3_error("InternalError")
        found = self._find(key, etag, version_id, "GetObject")
        body = found.body
        if key in self.damaged and body:
            self.damaged.discard(key)
            body = bytes([body[0] ^ 1]) + body[1:]
        sink(body)
        return ReadInfo(len(body), found.etag, None)

    def read_many(self, requests: Sequence[ReadRequest],
                  cancelled: Callable[[], bool] | None = None) -> list[ReadResult]:
        """One read each, in order, into a sink of its own; never raises (as Bucket.read_many)."""
        results = []
        for r in requests:
            if cancelled is not None and cancelled():
                results.append(ReadResult(error=Cancelled("stopped before the read started")))
                continue
            try:
                sink = r.open_sink()
            except Exception as exc:
                results.append(ReadResult(error=exc))
                continue
            try:
                info = self.read(r.key, r.etag, 0, sink.write, r.version_id)
            except Exception as exc:
                sink.discard()
                results.append(ReadResult(error=exc))
            else:
                results.append(ReadResult(info, sink))
        return results

    def head(self, key: str, etag: str = "", version_id: str | None = None) -> Stored:
        self.requests.append(Request("HEAD", key))
        found = self._find(key, etag, version_id, "HeadObject")
        return Stored(found.etag, found.version_id)

    def put(self, key: str, body: bytes, content_type: str | None = None) -> Stored:
        self.requests.append(Request("PUT", key))
        version = Version(bytes(body), hashlib.md5(body, usedforsecurity=False).hexdigest(),
                          datetime.now(timezone.utc), f"v{next(self._ids)}" if self.versioned else None)
        self._current[key] = version
        self._history[key] = (self._history.get(key, []) if self.versioned else []) + [version]
        return Stored(version.etag, version.version_id)

    def delete(self, keys: Sequence[str]) -> list[tuple[str, str]]:
        for key in keys:
            self.requests.append(Request("DELETE", key))
            self._current.pop(key, None)
            if not self.versioned:
                self._history.pop(key, None)
        return []

    def versioning(self) -> str | None:
        return "Enabled" if self.versioned else None

    def sibling(self) -> "MemoryBucket":
        return self  # nothing to keep apart: no connections

    def close(self) -> None:
        pass

    def __enter__(self) -> "MemoryBucket":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- helpers ----------------------------------------------------------------------------------

    def _listed(self, key: str) -> RemoteObject:
        v = self._current[key]
        return listed(key, f'"{v.etag}"', len(v.body), v.last_modified)

    def _find(self, key: str, etag: str, version_id: str | None, operation: str) -> Version:
        if version_id:
            found = next((v for v in self._history.get(key, ()) if v.version_id == version_id), None)
            if found is None:
                raise s3_error("NoSuchVersion" if key in self._history else "NoSuchKey", operation)
        else:
            found = self._current.get(key)
            if found is None:
                raise s3_error("NoSuchKey", operation)
        if etag and found.etag != etag:
            raise s3_error("PreconditionFailed", operation)
        return found

"""One bucket behind one interface. Which transport carries a request is decided here, never by a caller.

Listings and GETs take the fast path (objsync.s3.fast) when it can be used, with one attempt each;
anything but a complete answer is repeated through the boto3 client (objsync.s3.boto), whose
standard retry mode then applies. Writes, HEADs, copies and deletes always go through boto3.
"""

from __future__ import annotations

import copy
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO, Callable, Sequence

from objsync.model import RemoteObject
from objsync.s3 import boto
from objsync.s3.config import AnySession, RemoteConfig, make_client, make_session
from objsync.s3.fast import FastGet, FastPath, find_route, missing, read_info
from objsync.s3.pages import Pages, objects_digest, same_listing
from objsync.s3.records import Buffer, Cancelled, ReadInfo, ReadRequest, ReadResult, SpanRequest, Stored, Uploaded


class _Links:
    """What a Bucket does not share with its siblings: fast-path connections, boto3 client, threads."""

    def __init__(self, cfg: RemoteConfig, session: AnySession) -> None:
        self._cfg, self._session = cfg, session
        self._fast: FastPath | None = None
        self._client = None
        self._threads: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def fast(self, route) -> FastPath:
        with self._lock:
            if self._fast is None:
                self._fast = FastPath(route)
            return self._fast

    def client(self):
        """The boto3 client, built on first use: a pass that never falls back never pays for it."""
        with self._lock:
            if self._client is None:
                self._client = make_client(self._cfg, self._session)
            return self._client

    def threads(self) -> ThreadPoolExecutor:
        """Threads for the reads that go through boto3, which blocks on each one."""
        with self._lock:
            if self._threads is None:
                self._threads = ThreadPoolExecutor(max(1, self._cfg.concurrency), thread_name_prefix="s3-read")
            return self._threads

    def close(self) -> None:
        with self._lock:
            fast, threads, self._fast, self._threads = self._fast, self._threads, None, None
        if threads is not None:
            threads.shutdown(wait=True, cancel_futures=True)
        if fast is not None:
            fast.close()


class Bucket:
    """One bucket through one session: list, read, head, put, upload, copy and delete.

    `fallbacks` counts the requests that the fast path handed to boto3.
    """

    def __init__(self, cfg: RemoteConfig, name: str, session: AnySession | None = None) -> None:
        self.name = name
        self.fallbacks = 0
        self._cfg = cfg
        self._session = session or make_session(cfg)
        self._links = _Links(cfg, self._session)
        self._route = find_route(cfg, name, self._session, self._links.client)

    def sibling(self) -> "Bucket":
        """Another reader of the same bucket with its own connections, sharing this one's session
        and route (on AWS, finding the route builds a whole client)."""
        twin = copy.copy(self)
        twin.fallbacks = 0
        twin._links = _Links(self._cfg, self._session)
        return twin

    def close(self) -> None:
        """Close the fast path's connections and the read threads."""
        self._links.close()

    def __enter__(self) -> "Bucket":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- listing --------------------------------------------------------------------------------

    def list(self, prefix: str) -> list[RemoteObject]:
        """Every object under `prefix`, in the server's order."""
        if self._route is not None:
            found = self._links.fast(self._route).list(prefix)
            if found is not None:
                return found[0]
            self.fallbacks += 1
        return list(boto.list_prefix(self._links.client(), self.name, prefix))

    def page(self, prefix: str, token: str | None) -> tuple[list[RemoteObject], str | None, str]:
        """One page of the listing of `prefix`: objects, the next page's token (None after the last), and
        the page's digest (of its bytes on the fast path, of its objects through boto3)."""
        if self._route is not None:
            found = self._links.fast(self._route).page(prefix, token)
            if found is not None:
                return found
            self.fallbacks += 1
        return self._boto_page(prefix, token)

    def unchanged(self, prefix: str, known: str) -> bool:
        """Whether the listing of `prefix` is still the one `known` fingerprints, parsing none of it if so."""
        if not known:
            return False
        if self._route is not None:
            same = self._links.fast(self._route).same(prefix, known)
            if same is not None:
                return same
            self.fallbacks += 1
        return bool(same_listing(self._boto_page, prefix, known))

    def pages(self, prefix: str) -> Pages:
        """Every object under `prefix`, in key order, read a page at a time as it is iterated."""
        return Pages(self.page, prefix)

    def _boto_page(self, prefix: str, token: str | None) -> tuple[list[RemoteObject], str | None, str]:
        objects, token = boto.list_page(self._links.client(), self.name, prefix, token)
        return objects, token, objects_digest(objects)

    def list_level(self, prefix: str, needs: str | None = None) -> tuple[list[RemoteObject], list[str]]:
        """The objects directly under `prefix` and the sub-folders ('prefix/name/'), with Delimiter='/'.

        With `needs` (a sub-folder), the listing ends at the first page that passes it in key order
        without holding it: the folder does not exist, and the rest is not listed.
        """
        if self._route is not None:
            found = self._links.fast(self._route).list(prefix, level=True, needs=needs)
            if found is not None:
                return found
            self.fallbacks += 1
        return boto.list_level(self._links.client(), self.name, prefix, needs)

    # -- reading --------------------------------------------------------------------------------

    def read(self, key: str, etag: str, size: int, sink: Callable[[bytes], object],
             version_id: str | None = None) -> ReadInfo:
        """Deliver the object's bytes (of one version, when given) to `sink`; errors are botocore's.

        The fast attempt is held in memory until it is complete, so `sink` never sees the bytes of
        an attempt that failed half-way; large objects belong with read_many.
        """
        if self._route is not None:
            held = Buffer()
            (reply,) = self._links.fast(self._route).get([FastGet(key, etag, version_id, held.write)])
            if reply.ok:
                for chunk in held.chunks:
                    sink(chunk)
                return read_info(reply)
            gone = missing(reply, key)
            if gone is not None:
                raise gone
            self.fallbacks += 1
        return boto.read_object(self._links.client(), self.name, key, etag, sink, version_id=version_id)

    def read_spans(self, spans: Sequence[SpanRequest],
                   cancelled: Callable[[], bool] | None = None) -> list[ReadInfo | BaseException]:
        """Read each span at once into its `write`, every byte once and in order; results in order.

        A read that breaks off on the fast path goes on through boto3 from the first byte not yet
        delivered, so `write` never sees a byte twice. A span ends with its ReadInfo, or with the
        exception that stopped it (Cancelled once `cancelled()` is true).
        """
        delivered = [0] * len(spans)

        def counted(i: int) -> Callable[[bytes], None]:
            def write(chunk: bytes) -> None:
                spans[i].write(chunk)
                delivered[i] += len(chunk)
            return write

        results: list[ReadInfo | BaseException | None] = [None] * len(spans)
        again = list(range(len(spans)))
        if self._route is not None and spans:
            gets = [FastGet(s.key, s.etag, s.version_id, counted(i), (s.start, s.end)) for i, s in enumerate(spans)]
            again = []
            for i, reply in enumerate(self._links.fast(self._route).get(gets, cancelled)):
                if reply.ok:
                    results[i] = read_info(reply)
                elif reply.raised is not None or missing(reply, spans[i].key) is not None:
                    results[i] = reply.raised or missing(reply, spans[i].key)
                else:
                    again.append(i)
            self.fallbacks += len(again)

        def rest(i: int) -> ReadInfo | BaseException:
            s = spans[i]
            if cancelled is not None and cancelled():
                return Cancelled("stopped before the read finished")
            if s.start + delivered[i] >= s.end:
                return ReadInfo(s.end - s.start, s.etag, None)
            try:
                return boto.read_object(self._links.client(), self.name, s.key, s.etag, counted(i),
                                        version_id=s.version_id, span=(s.start + delivered[i], s.end))
            except Exception as exc:
                return exc

        for i, result in zip(again, self._links.threads().map(rest, again)):
            results[i] = result
        return results

    def read_many(self, requests: Sequence[ReadRequest],
                  cancelled: Callable[[], bool] | None = None) -> list[ReadResult]:
        """Read many objects at once; results in the order of `requests`.

        Each read gets one attempt on the fast path, then goes through boto3 into a fresh sink; a
        failed attempt's sink is discarded. A read whose sink raised (a full disk) is not repeated.
        Once `cancelled()` is true, reads not yet complete end with Cancelled.
        """
        results: list[ReadResult | None] = [None] * len(requests)
        again = range(len(requests))
        if self._route is not None:
            again = self._read_fast(requests, results, cancelled)
        if again:
            for i, result in zip(again, self._links.threads().map(
                    lambda i: _read_slow(self._links.client(), self.name, requests[i], cancelled), again)):
                results[i] = result
        return results

    def _read_fast(self, requests: Sequence[ReadRequest], results: list, cancelled) -> list[int]:
        """One attempt each on the fast path; the indexes of the reads to repeat through boto3."""
        sinks = {}
        for i, r in enumerate(requests):
            try:
                sinks[i] = r.open_sink()
            except Exception as exc:
                results[i] = ReadResult(error=exc)
        gets = [FastGet(requests[i].key, requests[i].etag, requests[i].version_id, s.write) for i, s in sinks.items()]
        replies = self._links.fast(self._route).get(gets, cancelled)
        stopped = cancelled is not None and cancelled()
        again = []
        for (i, sink), reply in zip(sinks.items(), replies):
            if reply.ok:
                results[i] = ReadResult(read_info(reply), sink)
                continue
            sink.discard()
            gone = missing(reply, requests[i].key)
            if reply.raised is not None or gone is not None:
                results[i] = ReadResult(error=reply.raised or gone)
            elif stopped:
                results[i] = ReadResult(error=Cancelled("stopped before the read finished"))
            else:
                again.append(i)
        self.fallbacks += len(again)
        return again

    def read_if_changed(self, key: str, etag: str = "") -> tuple[bytes, str] | None:
        """A small object's bytes and ETag, or None while its ETag is still `etag` (a conditional GET)."""
        return boto.read_if_changed(self._links.client(), self.name, key, etag)

    def open(self, key: str, etag: str = "", version_id: str | None = None) -> BinaryIO:
        """The object's body as a stream, for copying without holding it; close it after use."""
        return boto.open_object(self._links.client(), self.name, key, etag, version_id)

    def head(self, key: str, etag: str = "", version_id: str | None = None) -> Stored:
        """What the bucket holds at `key`; a missing object raises (see objsync.s3.errors.is_missing)."""
        return boto.head_object(self._links.client(), self.name, key, etag, version_id)

    def versioning(self) -> str | None:
        """'Enabled', 'Suspended', or None for a bucket that never kept versions."""
        return boto.versioning(self._links.client(), self.name)

    # -- writing --------------------------------------------------------------------------------

    def put(self, key: str, body: bytes, content_type: str | None = None) -> Stored:
        """Store `body` at `key` with Content-MD5, so the server refuses bytes damaged on the way."""
        return boto.put_object(self._links.client(), self.name, key, body, content_type)

    def upload(self, key: str, fileobj: BinaryIO, size: int) -> Uploaded:
        """A multipart upload of `size` bytes with a fixed part size, so the ETag of what was sent is known."""
        return boto.upload(self._links.client(), self.name, key, fileobj, size)

    def copy(self, key: str, src_bucket: str, src_key: str, etag: str = "", version_id: str | None = None) -> Stored:
        """A server-side copy of one version, or of the current object only while its ETag is `etag`."""
        return boto.copy_object(self._links.client(), self.name, key, src_bucket, src_key, etag, version_id)

    def delete(self, keys: Sequence[str]) -> list[tuple[str, str]]:
        """Delete `keys` in batches; (key, why) for each one that was not deleted."""
        return boto.delete_objects(self._links.client(), self.name, keys)


def _read_slow(client, bucket: str, r: ReadRequest, cancelled: Callable[[], bool] | None) -> ReadResult:
    """One read through the boto3 client, with its retries, into a fresh sink; never raises."""
    if cancelled is not None and cancelled():
        return ReadResult(error=Cancelled("stopped before the read started"))
    try:
        sink = r.open_sink()
    except Exception as exc:
        return ReadResult(error=exc)
    try:
        info = boto.read_object(client, bucket, r.key, r.etag, sink.write, version_id=r.version_id)
    except Exception as exc:
        sink.discard()
        return ReadResult(error=exc)
    return ReadResult(info, sink)

"""Reading files from their version's pack: a few ranged GETs where a cold pull would send one GET per file.

`PackedFetcher` stands in front of the pool. When at least half of a pack's files are to be
fetched (an empty folder, a new pod, a version built from nothing), those jobs are read from the
pack, through the same batch writer as any download (temp file, size, MD5 and signed SHA-256
checks, rename). A file whose bytes in the pack are not the manifest's, or a segment that cannot be
read or unpacked, is read again on its own, and the pack is reported. The other jobs go to the pool.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Iterator, Sequence

from objsync.model import Fetch, FetchResult, Job
from objsync.pack import PackError, Slot, ranges, unpack
from objsync.pull.fetch import WriteOptions, run_batch
from objsync.s3.bucket import Bucket
from objsync.s3.errors import describe_error
from objsync.s3.records import Buffer, ReadInfo, ReadRequest, ReadResult

log = logging.getLogger("objsync.pull")

SHARE = 0.5  # read a pack when at least this share of its files are to be fetched
SPAN_BYTES = 16 << 20  # one ranged read covers about this much of a pack
READS = 8  # ranged reads in flight at once
_CHUNK = 1 << 20


class PackedFetcher:
    """A Fetcher that reads from packs the jobs whose pack is mostly wanted, and hands the rest to `fetcher`."""

    def __init__(self, fetcher, bucket: Bucket, opts: WriteOptions) -> None:
        self.fetcher, self.bucket, self.opts = fetcher, bucket, opts

    def run(self, jobs: Sequence[Job], stop: threading.Event | None = None) -> Iterator[list[FetchResult]]:
        by_pack: dict[str, list[Job]] = defaultdict(list)
        rest: list[Job] = []
        for job in jobs:
            (by_pack[job.fetch.pack.key] if job.fetch.pack is not None else rest).append(job)
        packed: list[list[Job]] = []
        for group in by_pack.values():
            if len(group) >= SHARE * group[0].fetch.pack.pack.files:
                packed += _spans(group)
            else:
                rest += group
        if packed:
            yield from self._read_packed(packed, stop)
        if rest and not (stop is not None and stop.is_set()):
            yield from self.fetcher.run(rest, stop)

    def _read_packed(self, spans: list[list[Job]], stop: threading.Event | None) -> Iterator[list[FetchResult]]:
        cancelled = (lambda: stop.is_set()) if stop is not None else None
        with ThreadPoolExecutor(max_workers=READS) as threads:
            def run_many(fn, items):
                return [fn(item) for item in items]

            def one(span: list[Job]) -> list[FetchResult]:
                reader = PackReader(self.bucket, [j.fetch for j in span])
                results = run_batch(reader, self.opts, span, run_many, cancelled)
                if reader.problems:  # one line per ranged read, not one per file: a pack can hold thousands
                    key = span[0].fetch.pack.key
                    log.warning("pack %s: %d of its files were read one by one instead (first, %s)", key,
                                len(reader.problems), reader.problems[0], extra={"key": key})
                return results

            for future in as_completed([threads.submit(one, span) for span in spans]):
                yield future.result()


class PackReader:
    """Serves reads of the files of one span of a pack: one ranged GET, then each file from its segment."""

    def __init__(self, bucket: Bucket, fetches: Sequence[Fetch]) -> None:
        self.bucket = bucket
        self.fetches = {f.key: f for f in fetches}
        self.problems: list[str] = []

    def read_many(self, requests: Sequence[ReadRequest], cancelled=None) -> list[ReadResult]:
        results: list[ReadResult | None] = [None] * len(requests)
        slots = {i: self.fetches[r.key].pack for i, r in enumerate(requests)}
        segments = self._segments({s.segment for s in slots.values()}, next(iter(slots.values()), None))
        again = []
        for i, r in enumerate(requests):
            data = segments.get(slots[i].segment, "its segment was not read")
            why = "" if isinstance(data, bytes) else data
            if not why:
                data = data[slots[i].start:slots[i].start + self.fetches[r.key].size]
                why = _mismatch(self.fetches[r.key], data)
            if why:
                self.problems.append(f"{r.key}: {why}")
                again.append(i)
                continue
            results[i] = _served(r, data)
        if again:
            for i, result in zip(again, self.bucket.read_many([requests[i] for i in again], cancelled)):
                results[i] = result
        return results

    def _segments(self, wanted: set[int], slot: Slot | None) -> dict[int, bytes | str]:
        """Each wanted segment's bytes, or why it could not be had."""
        if slot is None:
            return {}
        pack, out = slot.pack, {}
        for first, last in ranges(pack.segments, wanted, SPAN_BYTES):
            start = pack.segments[first].offset
            end = pack.segments[last].offset + pack.segments[last].length
            body = Buffer()
            try:
                self.bucket.read_span(slot.key, "" if pack.version_id else pack.etag, start, end, body.write,
                                      pack.version_id)
            except Exception as exc:
                for i in range(first, last + 1):
                    out[i] = f"cannot read it: {describe_error(exc)}"
                continue
            raw = body.getvalue()
            for i in range(first, last + 1):
                s = pack.segments[i]
                frame = raw[s.offset - start:s.offset - start + s.length]
                try:
                    out[i] = unpack(frame, self._unpacked(i))
                except PackError as exc:
                    out[i] = str(exc)
        return out

    def _unpacked(self, segment: int) -> int:
        return next(f.pack.unpacked for f in self.fetches.values() if f.pack.segment == segment)


def _spans(jobs: list[Job]) -> list[list[Job]]:
    """The jobs of one pack, grouped by the ranged read that serves them."""
    pack = jobs[0].fetch.pack.pack
    runs = ranges(pack.segments, {j.fetch.pack.segment for j in jobs}, SPAN_BYTES)
    index = {seg: n for n, (first, last) in enumerate(runs) for seg in range(first, last + 1)}
    out: list[list[Job]] = [[] for _ in runs]
    for job in jobs:
        out[index[job.fetch.pack.segment]].append(job)
    return out


def _mismatch(f: Fetch, data: bytes) -> str:
    """Why these bytes are not the file the manifest names ('' when they are)."""
    if len(data) != f.size:
        return f"{len(data)} bytes in the pack, the manifest says {f.size}"
    if f.md5 and hashlib.md5(data, usedforsecurity=False).hexdigest() != f.md5:
        return "its bytes in the pack do not match the manifest's MD5"
    if f.sha256 and hashlib.sha256(data).hexdigest() != f.sha256:
        return "its bytes in the pack do not match the signed SHA-256"
    return ""


def _served(r: ReadRequest, data: bytes) -> ReadResult:
    sink = r.open_sink()
    try:
        for at in range(0, len(data), _CHUNK):
            sink.write(data[at:at + _CHUNK])
    except Exception as exc:
        sink.discard()
        return ReadResult(error=exc)
    return ReadResult(ReadInfo(len(data), r.etag, None), sink)

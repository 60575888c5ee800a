"""Reading files from their version's pack: one GET (a few ranged GETs for a large pack) where a cold
pull would send one GET per file.

`PackedFetcher` stands in front of the pool. When at least half of a pack's files are to be
fetched (an empty folder, a new pod, a version built from nothing), those jobs are read from the
pack, through the same batch writer as any download (temp file, size, MD5 and signed SHA-256
checks, rename). The pack streams in: each segment is unpacked and its files written as soon as
its last byte arrives, so memory holds a few segments, never the pack. A file whose bytes in the
pack are not the manifest's, or a segment that cannot be read or unpacked, is read again on its
own, and the pack is reported once. The other jobs go to the pool.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Sequence

from objsync.model import Action, Fetch, FetchResult, Job
from objsync.s3.bucket import Bucket
from objsync.s3.errors import describe_error
from objsync.s3.records import Cancelled, ReadInfo, ReadRequest, ReadResult, SpanRequest

if TYPE_CHECKING:  # the pack format and the writer load when a pack is read, not in a LIST-mode pull
    from objsync.pack import Pack
    from objsync.pull.config import WriteOptions

log = logging.getLogger("objsync.pull")

SHARE = 0.5  # read a pack when at least this share of its files are to be fetched
SPAN_BYTES = 64 << 20  # one ranged read covers at most this much: a smaller pack is one GET
SERVERS = 2  # threads that unpack segments and write their files while the reads go on
QUEUED = 4  # segments read and waiting for a thread; a full queue pauses the reads, which bounds memory
_CHUNK = 1 << 20


class PackedFetcher:
    """A Fetcher that reads from packs the jobs whose pack is mostly wanted, and hands the rest to `fetcher`."""

    def __init__(self, fetcher, bucket: Bucket, opts: WriteOptions) -> None:
        self.fetcher, self.bucket, self.opts = fetcher, bucket, opts

    def run(self, jobs: Iterable[Job], stop: threading.Event | None = None) -> Iterator[list[FetchResult]]:
        by_pack: dict[str, list[Job]] = defaultdict(list)

        def plain() -> Iterator[Job]:
            # Files without a pack go on as they come; the others wait until their packs' shares are known.
            for job in jobs:
                if job.fetch.pack is None:
                    yield job
                else:
                    by_pack[job.fetch.pack.key].append(job)

        yield from self.fetcher.run(plain(), stop)
        packed: list[Job] = []
        rest: list[Job] = []
        for group in by_pack.values():
            if len(group) >= SHARE * group[0].fetch.pack.pack.files:
                packed += group
            else:
                rest += group
        if packed and not (stop is not None and stop.is_set()):
            yield self._read_packed(packed, stop)
        if rest and not (stop is not None and stop.is_set()):
            yield from self.fetcher.run(rest, stop)

    def _read_packed(self, jobs: list[Job], stop: threading.Event | None) -> list[FetchResult]:
        """One batch for every packed job: the reads of all packs at once, then one sync and the renames."""
        from objsync.pull.fetch import run_batch

        reader = PackReader(self.bucket, [j.fetch for j in jobs])
        results = run_batch(reader, self.opts, jobs, lambda fn, items: [fn(i) for i in items],
                            (lambda: stop.is_set()) if stop is not None else None)
        for key, problems in reader.problems.items():  # one line per pack: a pack can hold thousands of files
            log.warning("pack %s: %d of its files were read one by one instead (first, %s)", key,
                        len(problems), problems[0], extra={"key": key})
        return results


class PackReader:
    """Serves reads of files from their packs: the ranged GETs of every wanted segment, all at once."""

    def __init__(self, bucket: Bucket, fetches: Sequence[Fetch]) -> None:
        self.bucket = bucket
        self.fetches = {f.key: f for f in fetches}
        self.problems: dict[str, list[str]] = defaultdict(list)  # pack key -> what sent files to a GET of their own

    def read_many(self, requests: Sequence[ReadRequest], cancelled=None) -> list[ReadResult]:
        from objsync.pack import ranges

        results: list[ReadResult | None] = [None] * len(requests)
        why: dict[int, str] = {}
        members: dict[tuple[str, int], list[int]] = defaultdict(list)
        packs: dict[str, Pack] = {}
        for i, r in enumerate(requests):
            slot = self.fetches[r.key].pack
            members[slot.key, slot.segment].append(i)
            packs[slot.key] = slot.pack

        def serve(key: str, segment: int, frame: bytes) -> None:
            try:
                self._serve(requests, members[key, segment], frame, results, why, cancelled)
            except Exception as exc:  # never lost in a future nobody reads: those files are read on their own
                why.update((i, f"cannot be served from the pack: {exc!r}") for i in members[key, segment]
                           if results[i] is None or not results[i].ok)
            finally:
                room.release()

        room = threading.Semaphore(QUEUED)
        plan = [(key, range(first, last + 1)) for key, pack in packs.items()
                for first, last in ranges(pack.segments, {s for k, s in members if k == key}, SPAN_BYTES)]
        with ThreadPoolExecutor(SERVERS) as servers:
            def hand_on(key: str, segment: int, frame: bytes) -> None:
                room.acquire()  # the reads wait while QUEUED segments wait for a thread
                servers.submit(serve, key, segment, frame)

            ended = self.bucket.read_spans([_span(key, packs[key], segs, hand_on) for key, segs in plan], cancelled)
        stopped = cancelled is not None and cancelled()
        for (key, segs), end in zip(plan, ended):
            for i in (i for s in segs for i in members[key, s] if results[i] is None and i not in why):
                if not (stopped or isinstance(end, Cancelled)):
                    why[i] = (f"its segment was not read: {describe_error(end)}" if isinstance(end, BaseException)
                              else "the pack ended before its segment")
        again = sorted(why)
        for i in again:
            self.problems[self.fetches[requests[i].key].pack.key].append(f"{requests[i].key}: {why[i]}")
        for i, result in zip(again, self.bucket.read_many([requests[i] for i in again], cancelled)):
            results[i] = result
        return [r if r is not None else ReadResult(error=Cancelled("stopped before its segment was read"))
                for r in results]

    def _serve(self, requests: Sequence[ReadRequest], indexes: list[int], frame: bytes,
               results: list, why: dict[int, str], cancelled) -> None:
        """Unpack one segment and write each of its wanted files; what fails is left for a GET of its own."""
        from objsync.pack import PackError, unpack

        try:
            raw = memoryview(unpack(frame, self.fetches[requests[indexes[0]].key].pack.unpacked))
        except PackError as exc:
            why.update((i, str(exc)) for i in indexes)
            return
        for i in indexes:
            if cancelled is not None and cancelled():
                return
            f = self.fetches[requests[i].key]
            results[i], problem = _served(requests[i], raw[f.pack.start:f.pack.start + f.size])
            if problem:
                why[i] = problem


class _Frames:
    """Cuts the bytes of one ranged read into its segments, handing each on as soon as it is whole."""

    def __init__(self, key: str, pack: Pack, first: int, last: int, hand_on: Callable[[str, int, bytes], None]):
        self.key, self.pack, self.next, self.last, self.hand_on = key, pack, first, last, hand_on
        self.buffer = bytearray()

    def write(self, chunk: bytes) -> None:
        if self.next > self.last:
            return  # bytes past the span: a server that answered the range with the whole object
        self.buffer += chunk
        while self.next <= self.last and len(self.buffer) >= self.pack.segments[self.next].length:
            length = self.pack.segments[self.next].length
            frame = bytes(self.buffer[:length])
            del self.buffer[:length]
            self.hand_on(self.key, self.next, frame)
            self.next += 1


def _span(key: str, pack: Pack, segments: range, hand_on) -> SpanRequest:
    """The ranged read of consecutive segments of a pack, cut into frames as it arrives."""
    frames = _Frames(key, pack, segments[0], segments[-1], hand_on)
    start, last = pack.segments[segments[0]].offset, pack.segments[segments[-1]]
    return SpanRequest(key, "" if pack.version_id else pack.etag, start, last.offset + last.length, frames.write,
                       pack.version_id)


def _served(r: ReadRequest, data: memoryview) -> tuple[ReadResult, str]:
    """Write one file's bytes through its sink and check them there; the result, and why it failed ('' if not)."""
    try:
        sink = r.open_sink()
    except Exception as exc:
        return ReadResult(error=exc), ""
    try:
        for at in range(0, len(data), _CHUNK):
            sink.write(data[at:at + _CHUNK])
    except Exception as exc:  # a full disk: not worth a second read
        sink.discard()
        return ReadResult(error=exc), ""
    info = ReadInfo(len(data), r.etag, None)
    # The batch writer's sink checks size, MD5 and signed SHA-256; checking now closes the temp file
    # at once, and a file that fails is read again on its own instead.
    outcome = sink.finish_or_fail(info)
    if isinstance(outcome, FetchResult) and outcome.action == Action.FAILED:
        return ReadResult(), f"its bytes in the pack are not the manifest's ({outcome.error})"
    return ReadResult(info, _Checked(outcome)), ""


class _Checked:
    """A sink already finished: what its check gave, handed to the batch writer as is."""

    def __init__(self, outcome) -> None:
        self.outcome = outcome

    def write(self, chunk: bytes) -> None:
        raise RuntimeError("this file is already written")

    def finish_or_fail(self, info: ReadInfo):
        return self.outcome

    def discard(self) -> None:
        tmp = getattr(self.outcome, "tmp_path", "")
        if tmp:
            try:
                os.unlink(tmp)
            except OSError:
                pass

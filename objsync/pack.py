"""Packs: one version's small files in one object, so a cold pull reads a handful of objects, not one per file.

A pack is a run of zstd frames, one per segment. A segment holds the bytes of consecutive files of
the manifest (path order, each file up to `max_file` bytes), end to end, with nothing else: the
manifest gives each file's size, so the files are found by position and never by a name stored in
the pack. Each segment is compressed on its own, so it can be read with a ranged GET and
unpacked alone, and one damaged segment costs only its own files. zstd unpacks at several
hundred MB/s a core, several times faster than gzip, at a better ratio on Python source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

FORMAT = "zstd"
MAX_FILE = 8 << 20  # larger files are read on their own: they gain nothing from sharing a request
SEGMENT_BYTES = 4 << 20  # uncompressed bytes a segment aims at: the unit of a ranged read and of a fallback
LEVEL = 3


class PackError(ValueError):
    """A pack that cannot be used: damaged, or not the one the manifest describes."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One zstd frame of a pack: where it lies in the object and how many files it holds."""

    offset: int
    length: int
    files: int


@dataclass(frozen=True)
class Pack:
    """The pack of a version, as its manifest records it: the object's ETag and size, and its segments."""

    etag: str
    size: int
    segments: tuple[Segment, ...]
    max_file: int = MAX_FILE
    version_id: str | None = None
    format: str = FORMAT

    @property
    def files(self) -> int:
        return sum(s.files for s in self.segments)


@dataclass(frozen=True, slots=True)
class Slot:
    """Where one file lies in a pack: its segment (with the pack's key), its offset there once unpacked, and
    the segment's unpacked size."""

    key: str
    pack: Pack
    segment: int
    start: int
    unpacked: int


def members(sizes: Sequence[tuple[str, int]], max_file: int = MAX_FILE) -> list[int]:
    """The indexes of (path, size) pairs, in path order, whose files go in the pack."""
    return [i for i, (_, size) in enumerate(sizes) if size <= max_file]


def segment_files(sizes: Iterable[int]) -> list[int]:
    """How many consecutive files each segment holds: about SEGMENT_BYTES each, at least one file."""
    counts, count, total = [], 0, 0
    for size in sizes:
        if count and total + size > SEGMENT_BYTES:
            counts.append(count)
            count, total = 0, 0
        count += 1
        total += size
    if count:
        counts.append(count)
    return counts


def build(contents: Iterable[bytes], sizes: Sequence[int]) -> tuple[bytes, tuple[Segment, ...]]:
    """Compress the files' bytes (in member order) into a pack; its bytes and segments."""
    import zstandard

    compressor = zstandard.ZstdCompressor(level=LEVEL, write_content_size=True)
    out, segments, it = bytearray(), [], iter(contents)
    for count in segment_files(sizes):
        raw = b"".join(next(it) for _ in range(count))
        frame = compressor.compress(raw)
        segments.append(Segment(len(out), len(frame), count))
        out += frame
    return bytes(out), tuple(segments)


def slots(key: str, pack: Pack, files: Sequence[tuple[str, int]]) -> dict[str, Slot]:
    """Path -> Slot for each member of the pack among `files` ((path, size) in path order)."""
    chosen = [files[i] for i in members(files, pack.max_file)]
    if len(chosen) != pack.files:
        raise PackError(f"the pack holds {pack.files} files, the manifest names {len(chosen)} that fit in it")
    out, at = {}, 0
    for index, segment in enumerate(pack.segments):
        members_here = chosen[at:at + segment.files]
        unpacked, start = sum(size for _, size in members_here), 0
        for path, size in members_here:
            out[path] = Slot(key, pack, index, start, unpacked)
            start += size
        at += segment.files
    return out


def unpack(frame: bytes, expected: int) -> bytes:
    """The bytes of one segment; PackError when the frame is damaged or not `expected` bytes long."""
    import zstandard

    try:
        raw = zstandard.ZstdDecompressor().decompress(frame, max_output_size=expected)
    except zstandard.ZstdError as exc:
        raise PackError(f"segment does not unpack: {exc}") from None
    if len(raw) != expected:
        raise PackError(f"segment unpacks to {len(raw)} bytes, its files add up to {expected}")
    return raw


def ranges(segments: Sequence[Segment], wanted: Iterable[int], max_bytes: int) -> list[tuple[int, int]]:
    """Runs of wanted segments as (first, last) index pairs, each at most about `max_bytes` long."""
    runs: list[tuple[int, int]] = []
    for i in sorted(set(wanted)):
        if runs and runs[-1][1] == i - 1:
            first = runs[-1][0]
            span = segments[i].offset + segments[i].length - segments[first].offset
            if span <= max_bytes:
                runs[-1] = (first, i)
                continue
        runs.append((i, i))
    return runs


def check_pack(pack: Pack, fail: Callable[[str], Exception]) -> None:
    """Raise fail(message) unless the pack's segments tile its object exactly."""
    at = 0
    for s in pack.segments:
        if not (type(s.offset) is int and type(s.length) is int and type(s.files) is int):
            raise fail("pack segments must be whole numbers")
        if s.offset != at or s.length <= 0 or s.files <= 0:
            raise fail(f"pack segment at {s.offset} does not follow the one before it (expected {at})")
        at += s.length
    if at != pack.size:
        raise fail(f"pack segments add up to {at} bytes, the pack has {pack.size}")
    if pack.format != FORMAT:
        raise fail(f"pack format {pack.format!r} is not known to this objsync; upgrade objsync")

"""The pack format without a server: segments, slots, ranges, and packs that do not fit their manifest."""

import os

import pytest

from objsync import pack as packs
from objsync.manifest import FileEntry, Manifest, ManifestError
from objsync.pack import Pack, PackError, Segment, build, members, ranges, segment_files, slots, unpack

MD5 = "0123456789abcdef0123456789abcdef"


def test_segments_hold_about_the_target_size_and_every_file_once(monkeypatch):
    monkeypatch.setattr(packs, "SEGMENT_BYTES", 100)
    assert segment_files([40, 40, 40, 10, 200, 5]) == [2, 2, 1, 1]
    assert segment_files([]) == []
    assert sum(segment_files([7] * 1000)) == 1000


def test_build_then_each_file_is_found_by_its_slot(monkeypatch):
    monkeypatch.setattr(packs, "SEGMENT_BYTES", 4096)
    files = [(f"f{i:03}.py", os.urandom(37 * i % 3000)) for i in range(60)] + [("zbig", b"x" * 100)]
    sizes = [(p, len(d)) for p, d in files]
    chosen = members(sizes, max_file=2999)
    data, segments = build([files[i][1] for i in chosen], [sizes[i][1] for i in chosen])
    p = Pack("e", len(data), segments, max_file=2999)
    found = slots("k", p, sizes)
    assert set(found) == {files[i][0] for i in chosen} and len(segments) > 3
    for path, content in files:
        if path not in found:
            assert len(content) > 2999
            continue
        s = found[path]
        seg = segments[s.segment]
        raw = unpack(data[seg.offset:seg.offset + seg.length], s.unpacked)
        assert raw[s.start:s.start + len(content)] == content


def test_a_damaged_segment_is_an_error_not_bytes():
    data, (seg,) = build([b"hello " * 100], [600])
    with pytest.raises(PackError, match="does not unpack"):
        unpack(data[:-3] + b"\0\0\0", 600)
    with pytest.raises(PackError):
        unpack(data, 599)


def test_ranges_join_neighbours_up_to_a_size():
    segs = [Segment(i * 10, 10, 1) for i in range(10)]
    assert ranges(segs, {0, 1, 2, 5, 6, 9}, 25) == [(0, 1), (2, 2), (5, 6), (9, 9)]
    assert ranges(segs, {3, 4}, 1000) == [(3, 4)]
    assert ranges(segs, [], 10) == []


def manifest_with(pack: Pack, sizes=(3, 4)) -> Manifest:
    files = tuple(FileEntry(f"f{i}", s, MD5, MD5, None, "ab" * 32) for i, s in enumerate(sizes))
    return Manifest("r", files, None, "2024-05-01T12:00:00Z", "0.2.0", pack=pack)


def test_a_pack_round_trips_in_schema_4_and_must_fit_its_files():
    good = Pack("etag1", 30, (Segment(0, 20, 1), Segment(20, 10, 1)))
    m = manifest_with(good)
    assert m.schema == 4 and Manifest.from_json(m.to_json()) == m and Manifest.from_json(m.to_json()).pack == good
    for bad, message in [
        (Pack("etag1", 30, (Segment(0, 20, 1), Segment(21, 9, 1))), "does not follow"),
        (Pack("etag1", 31, (Segment(0, 20, 1), Segment(20, 10, 1))), "add up to 30 bytes"),
        (Pack("etag1", 30, (Segment(0, 30, 1),)), "holds 1 files, the manifest names 2"),
        (Pack("etag1", 30, (Segment(0, 30, 2),), format="gzip"), "format 'gzip'"),
        (Pack('"q"', 30, (Segment(0, 30, 2),)), "etag"),
    ]:
        with pytest.raises(ManifestError, match=message):
            manifest_with(bad)

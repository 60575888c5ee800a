"""The cache read for a dry run: what it holds, and not one byte written beside it."""

from pathlib import Path

from objsync.model import Entry
from objsync.pull.state import State

ENTRY = Entry("d41d8cd98f00b204e9800998ecf8427e", 3, 1_700_000_000_000_000_000, "00ff")


def on_disk(folder: Path) -> dict[str, tuple[int, int, bytes]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(folder.iterdir())}


def test_a_dry_run_reads_a_closed_cache_without_writing_anything(tmp_path):
    folder = tmp_path / "cache"
    with State.open(folder, "src") as state:
        state.put([("a.py", ENTRY)])
        state.put_memo("manifest:r", "etag\n{}")
    before = on_disk(folder)
    assert sorted(before) == ["cache.db"]  # closed: every row is in the main file
    looked = State.read_only(folder, "src")
    assert (looked.entries, looked.memos, looked.notes) == ({"a.py": ENTRY}, {"manifest:r": "etag\n{}"}, [])
    looked.put([("b.py", ENTRY)])
    looked.drop_memo("manifest:r")  # a dry run's pass may change its own view, in memory only
    assert on_disk(folder) == before


def test_a_dry_run_reads_a_cache_in_use_through_its_write_ahead_log(tmp_path):
    folder = tmp_path / "cache"
    with State.open(folder, "src") as state:
        state.put([("a.py", ENTRY)])
        names = sorted(on_disk(folder))
        assert State.read_only(folder, "src").entries == {"a.py": ENTRY}
        assert sorted(on_disk(folder)) == names


def test_a_dry_run_trusts_no_foreign_or_damaged_cache_and_creates_none(tmp_path):
    folder = tmp_path / "cache"
    with State.open(folder, "src") as state:
        state.put([("a.py", ENTRY)])
    assert State.read_only(folder, "another source").entries == {}
    (folder / "cache.db").write_bytes(b"not a database")
    damaged = State.read_only(folder, "src")
    assert damaged.entries == {} and "unreadable" in damaged.notes[0]
    assert State.read_only(tmp_path / "none", "src").entries == {} and not (tmp_path / "none").exists()

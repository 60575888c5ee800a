"""The cache read for a dry run: what it holds, and not one byte written beside it."""

import sqlite3
from pathlib import Path

import pytest

from objsync.model import Entry
from objsync.pull.state import CacheCorrupt, State

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


def test_entries_stay_on_disk_until_a_pass_asks_and_unload_lets_them_go(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    with State.open(folder, "src") as state:
        state.put([("a.py", ENTRY), ("b.py", ENTRY)])
    read = []
    real = State._rows
    monkeypatch.setattr(State, "_rows", lambda self, where, **k: read.append(where) or real(self, where, **k))
    with State.open(folder, "src") as state:
        assert not any(w.startswith("key >=") for w in read)  # opening reads the meta and memos only
        assert sorted(state.each()) == [("a.py", ENTRY), ("b.py", ENTRY)]
        assert state.entries == {"a.py": ENTRY, "b.py": ENTRY}
        state.unload()
        state.put([("c.py", ENTRY)])
        state.remove(["a.py"])
        assert state.entries == {"b.py": ENTRY, "c.py": ENTRY}  # read again from disk, with what was written since


def test_damage_found_after_opening_sets_the_cache_aside_and_trusts_nothing_of_it(tmp_path, caplog):
    folder = tmp_path / "cache"
    with State.open(folder, "src") as state:
        state.put([("a.py", ENTRY), ("b.py", ENTRY)])
    with State.open(folder, "src") as state:
        with sqlite3.connect(folder / "cache.db") as db:
            db.execute("UPDATE Cache SET value = 'not an entry' WHERE key = 'f:b.py'")
        with pytest.raises(CacheCorrupt):
            list(state.each())
        assert state.entries == {} and "moved it to" in state.notes[0]
        assert any("moved it to" in r.getMessage() for r in caplog.records)
        state.put([("c.py", ENTRY)])
    assert State.read_only(folder, "src").entries == {"c.py": ENTRY}  # the fresh cache took the write
    assert list(tmp_path.glob("cache.broken-*"))


def test_changes_the_disk_refuses_are_kept_in_memory_after_unload(tmp_path, monkeypatch):
    other = Entry("0" * 32, 9, 1, "11")
    with State.open(tmp_path / "cache", "src") as state:
        state.put([("a.py", ENTRY), ("b.py", ENTRY)])
        state.unload()
        monkeypatch.setattr(State, "_write", lambda self, change: False)
        state.put([("a.py", other)])
        state.remove(["b.py"])
        assert dict(state.each()) == {"a.py": other}
        monkeypatch.undo()
        state.put([("a.py", ENTRY)])
        assert dict(state.each()) == state.entries == {"a.py": ENTRY}  # b.py's removal is still owed to the disk


def test_lookup_reads_a_page_of_paths_from_disk_with_what_the_disk_refused(tmp_path, monkeypatch):
    other = Entry("0" * 32, 9, 1, "11")
    with State.open(tmp_path / "cache", "src") as state:
        state.put([(f"f{i}", ENTRY) for i in range(1500)])
        state.unload()
        assert state.lookup(["f1", "f1499", "missing"]) == {"f1": ENTRY, "f1499": ENTRY}
        assert len(state.lookup([f"f{i}" for i in range(1000)])) == 1000
        monkeypatch.setattr(State, "_write", lambda self, change: False)
        state.put([("f1", other)])
        state.remove(["f2"])
        assert state.lookup(["f1", "f2", "f3"]) == {"f1": other, "f3": ENTRY}
        assert state._entries is None  # nothing was loaded whole
        assert state.entries["f1"] == other and state.lookup(["f1", "f2"]) == {"f1": other}


def test_rows_written_a_batch_at_a_time_are_the_rows_diskcache_itself_reads(tmp_path):
    import diskcache

    a, b = Entry("e1", 1, 10, "x1"), Entry("e2", 2, 20, "x2")
    with State.open(tmp_path / "c", "id") as state:
        state.put([("a.py", a), ("b.py", b)])
        state.put([("a.py", b)])  # written again: replaced, not added
        state.remove(["b.py"])
        state.put_memo("note", "text")
    with diskcache.Cache(str(tmp_path / "c")) as cache:
        assert cache.get("f:a.py") == b.encode() and cache.get("f:b.py") is None
        assert cache.get("m:note") == "text"
        assert len(cache) == 3  # the meta key, a.py and the note: the table's own count agrees
    with State.open(tmp_path / "c", "id") as state:
        assert state.entries == {"a.py": b} and state.memos == {"note": "text"}

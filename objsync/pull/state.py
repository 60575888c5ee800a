"""The persistent cache of what objsync last wrote, per relative path, kept with diskcache."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import diskcache

from objsync.model import Entry
from objsync.pull import cacherows
from objsync.pull.cacherows import CacheCorrupt, checked

log = logging.getLogger(__name__)

SCHEMA = "1"
_META = "meta"
_FILE = "f:"  # prefix of per-path keys, so that no path can collide with the meta key
_MEMO = "m:"  # prefix of named notes kept for other parts of objsync (manifest mode's last versions)
# Text keys sort between numbers and blobs, so every row of another type falls among the other rows.
_FILE_ROWS = "key >= 'f:' AND key < 'f;'"
_OTHER_ROWS = "key < 'f:' OR key >= 'f;'"


_BROKEN = (CacheCorrupt, sqlite3.Error, OSError, ValueError)
# SQLite's words for a disk that refuses writes, as opposed to a damaged file.
_REFUSED = ("disk is full", "readonly database", "read-only file system", "disk i/o error")


def _cannot_write(exc: BaseException) -> bool:
    """True when `exc` says the disk refuses writes (full, read-only, not permitted), not that the cache is bad."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)
    return isinstance(exc, sqlite3.Error) and any(word in str(exc).lower() for word in _REFUSED)


class State:
    """The cache of one destination: entries read from disk when a pass asks for them, written through on commit."""

    def __init__(self, directory: Path, identity: str) -> None:
        self.directory = Path(directory)
        self.identity = identity
        self._entries: dict[str, Entry] | None = {}  # None: on disk only, read again when asked for
        self._unsaved: dict[str, Entry | None] = {}  # what the disk refused to record or forget
        self.memos: dict[str, str] = {}
        self.notes: list[str] = []
        self._cache: diskcache.Cache | None = None
        self._writer: cacherows.Writer | None = None
        self._write_error = ""

    @classmethod
    def open(cls, directory: Path, identity: str) -> "State":
        """Open (or create) the cache; a corrupt or foreign one is set aside and started afresh.

        When the cache cannot be written at all (a full disk, a read-only or immutable folder), it is
        left as it is and this run keeps its cache in memory: a cache is never worth a failed sync.
        """
        state = cls(directory, identity)
        try:
            state._load()
        except _BROKEN as exc:
            state.notes.append(state._recover(exc))
        return state

    @classmethod
    def read_only(cls, directory: Path, identity: str) -> "State":
        """The cache as it stands, for a dry run: read without creating or changing anything; never written."""
        state = cls(directory, identity)
        if not (state.directory / diskcache.core.DBNAME).is_file():
            return state
        try:
            meta, memos = _parse(state._rows(_OTHER_ROWS, read_only=True))
            entries = dict(_entries(state._rows(_FILE_ROWS, read_only=True)))
        except _BROKEN as exc:
            state.notes.append(f"cache at {state.directory} is unreadable ({exc}); a real run sets it aside, and "
                               f"this plan verifies files already in place instead of trusting it")
            return state
        if meta == f"{SCHEMA}\t{identity}":
            state._entries, state.memos = entries, memos
        return state

    @classmethod
    def in_memory(cls, entries: dict[str, Entry]) -> "State":
        """A cache that lives only in this process, starting with `entries`."""
        state = cls(Path("."), "")
        state._entries = dict(entries)
        return state

    @property
    def entries(self) -> dict[str, Entry]:
        """Every entry by path: read from disk at first use, and held until `unload`."""
        if self._entries is None:
            try:
                self._entries = dict(self.each())
            except CacheCorrupt:
                self._entries = {}
        return self._entries

    def each(self) -> Iterator[tuple[str, Entry]]:
        """Every entry, one at a time; nothing is held. Raises CacheCorrupt once the damaged cache is set aside."""
        if self._entries is not None:
            yield from list(self._entries.items())
            return
        unsaved, rows = self._unsaved, self._rows(_FILE_ROWS)
        try:
            for rel, entry in _entries(rows):
                if rel not in unsaved:
                    yield rel, entry
        except _BROKEN as exc:
            rows.close()  # no reader is left on the file that is set aside
            raise CacheCorrupt(self._damaged(exc)) from None
        yield from [(rel, e) for rel, e in unsaved.items() if e is not None]

    def lookup(self, rels: list[str]) -> dict[str, Entry]:
        """The entries of some paths (a listing page's), read from disk unless they are in memory."""
        if self._entries is not None:
            return {rel: e for rel in rels if (e := self._entries.get(rel)) is not None}
        marks = ",".join("?" * len(rels))
        try:
            found = dict(_entries(self._rows(f"key IN ({marks})", args=[_FILE + rel for rel in rels])))
        except _BROKEN as exc:
            self._damaged(exc)
            return {}  # set aside: what is in place is verified, not trusted
        for rel in rels:
            if rel in self._unsaved:
                changed = self._unsaved[rel]
                if changed is None:
                    found.pop(rel, None)
                else:
                    found[rel] = changed
        return found

    def unload(self) -> None:
        """Let go of the entries in memory; the disk holds them, and `_unsaved` what it refused."""
        if self._cache is not None:
            self._entries = None

    def _damaged(self, exc: BaseException) -> str:
        """Damage found after opening: recover as `open` would, and say so now."""
        note = self._recover(exc)
        log.warning("%s", note)
        self.notes.append(note)
        return note

    def _recover(self, damage: BaseException) -> str:
        """Set a damaged cache aside and start afresh, or keep it in memory when the disk refuses; say which."""
        self._close()
        self._unsaved.clear()
        if _cannot_write(damage):
            return self._in_memory(f"cannot write the cache at {self.directory} ({damage})")
        try:
            aside = self._set_aside()
            self._entries = {}
            self._load()
        except _BROKEN as exc:
            self._close()
            return self._in_memory(f"cache at {self.directory} is unreadable ({damage}) and cannot be rebuilt ({exc})")
        return (f"cache at {self.directory} was unreadable ({damage}); moved it to {aside} and "
                f"rebuilt it: files already in place are verified, not re-downloaded")

    def _in_memory(self, why: str) -> str:
        self._cache = None
        self._entries = {}
        self.memos = {}
        return (f"{why}; this run keeps the cache in memory only, so files already in place are "
                f"verified by hash, not re-downloaded; free space or make the folder writable")

    def _load(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        # disk_min_file_size: large memos stay raw rows in SQLite, never pickled or text files beside it.
        # Entries are read a row at a time, so SQLite's own page cache and memory map (64 MiB by
        # default) would only hold a copy, growing with the folder: keep both small.
        self._cache = diskcache.Cache(str(self.directory), eviction_policy="none", statistics=False,
                                      size_limit=1 << 62, disk_min_file_size=1 << 40,
                                      sqlite_mmap_size=0, sqlite_cache_size=256)
        meta, memos = _parse(self._rows(_OTHER_ROWS))
        expected = f"{SCHEMA}\t{self.identity}"
        if meta != expected:
            rows = self._rows(_FILE_ROWS)
            if next(rows, None) is not None:
                self.notes.append("cache belonged to another source or version; starting afresh")
            rows.close()
            self._cache.clear()
            self._cache.set(_META, expected)
            self._entries, memos = {}, {}
        else:
            # The entries stay on disk until a pass asks for them: an unchanged listing may never need them.
            self._entries = None
        self.memos = memos

    def _rows(self, where: str, read_only: bool = False, args: Sequence[str] = ()) -> Iterator[tuple]:
        # Only raw (never pickled) values are accepted by the callers, so a tampered cache cannot run code.
        return cacherows.read(self.directory, where, read_only, args)

    def put(self, items: Iterable[tuple[str, Entry]]) -> None:
        """Record written files in one transaction."""
        items = list(items)
        if not items:
            return
        if self._entries is not None:
            self._entries.update(items)
        rows = cacherows.upserts((_FILE + rel, entry.encode()) for rel, entry in items)
        saved = self._write(lambda con: con.executemany(cacherows.UPSERT, rows))
        self._remember(items, saved)

    def remove(self, rels: Iterable[str]) -> None:
        """Forget paths in one transaction (done before the files themselves are removed)."""
        rels = list(rels)
        if not rels:
            return
        if self._entries is not None:
            for rel in rels:
                self._entries.pop(rel, None)
        saved = self._write(lambda con: con.executemany(cacherows.DELETE, [(_FILE + rel,) for rel in rels]))
        self._remember([(rel, None) for rel in rels], saved)

    def _remember(self, changes: list[tuple[str, Entry | None]], saved: bool) -> None:
        """Keep in memory what the disk refused: this process trusts it, and the disk may only ever hold less."""
        if saved:
            for rel, _ in changes:
                self._unsaved.pop(rel, None)
        elif self._cache is not None:
            self._unsaved.update(changes)

    def put_memo(self, name: str, text: str) -> None:
        """Keep a named note with the cache; it is dropped whenever the cache is started afresh."""
        self.memos[name] = text
        self._write(lambda con: con.executemany(cacherows.UPSERT, cacherows.upserts([(_MEMO + name, text)])))

    def drop_memo(self, name: str) -> None:
        if self.memos.pop(name, None) is not None:
            self._write(lambda con: con.execute(cacherows.DELETE, (_MEMO + name,)))

    def _write(self, change) -> bool:
        """Apply `change(connection)` to the disk copy in one transaction; a disk that refuses it is logged."""
        if self._cache is None:
            return True  # a cache in memory only: memory is all there is
        try:
            if self._writer is None:
                self._writer = cacherows.Writer(self.directory)
            self._writer.write(change)
        except (sqlite3.Error, OSError) as exc:
            # An entry that could not be recorded only costs a hash at the next start, and one that
            # could not be forgotten names a file that is gone, which the planner fetches again if listed.
            if str(exc) != self._write_error:
                advice = "; free space or make the folder writable" if _cannot_write(exc) else ""
                log.warning("cannot update the cache at %s (%s); the files themselves are in place, and the "
                            "next start verifies them by hash%s", self.directory, exc, advice)
            self._write_error = str(exc)
            return False
        self._write_error = ""
        return True

    def _set_aside(self) -> Path:
        aside = self.directory.with_name(self.directory.name + f".broken-{int(time.time())}")
        for old in self.directory.parent.glob(self.directory.name + ".broken-*"):
            shutil.rmtree(old, ignore_errors=True)  # keep only the latest broken copy
        if self.directory.exists():
            os.replace(self.directory, aside)
        return aside

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._cache is not None:
            try:
                self._cache.close()
            except Exception:  # closing a broken database must not hide the original error
                pass
            self._cache = None

    def close(self) -> None:
        self._close()

    def __enter__(self) -> "State":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _entries(rows: Iterable[tuple]) -> Iterator[tuple[str, Entry]]:
    for key, value in checked(rows):
        yield key[len(_FILE):], Entry.decode(value)


def _parse(rows: Iterable[tuple]) -> tuple[str | None, dict[str, str]]:
    """The meta record and the memos among the cache's other rows; raises CacheCorrupt on anything else."""
    meta = None
    memos: dict[str, str] = {}
    for key, value in checked(rows):
        if key == _META:
            meta = value
        elif key.startswith(_MEMO):
            memos[key[len(_MEMO):]] = value
        else:
            raise CacheCorrupt(f"unexpected key {key!r}")
    return meta, memos

"""The persistent cache of what objsync last wrote, per relative path, kept with diskcache."""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import diskcache

log = logging.getLogger(__name__)

SCHEMA = "1"
_META = "meta"
_FILE = "f:"  # prefix of per-path keys, so that no path can collide with the meta key


@dataclass(frozen=True, slots=True)
class Entry:
    """What objsync wrote at a path: the object's ETag, the file's size and mtime, and its xxh3."""

    etag: str
    size: int
    mtime_ns: int
    xxh3: str

    def encode(self) -> str:
        return f"{self.etag}\t{self.size}\t{self.mtime_ns}\t{self.xxh3}"

    @classmethod
    def decode(cls, text: str) -> "Entry":
        etag, size, mtime_ns, xxh3 = text.split("\t")
        return cls(etag, int(size), int(mtime_ns), xxh3)


class CacheCorrupt(Exception):
    """The cache on disk cannot be trusted."""


class State:
    """The cache of one destination: loaded whole at open, then written through on every commit."""

    def __init__(self, directory: Path, identity: str) -> None:
        self.directory = Path(directory)
        self.identity = identity
        self.entries: dict[str, Entry] = {}
        self.notes: list[str] = []
        self._cache: diskcache.Cache | None = None

    @classmethod
    def open(cls, directory: Path, identity: str) -> "State":
        """Open (or create) the cache; a corrupt or foreign one is set aside and started afresh."""
        state = cls(directory, identity)
        try:
            state._load()
        except (CacheCorrupt, sqlite3.Error, OSError, ValueError) as exc:
            state._close()
            aside = state._set_aside()
            state.notes.append(f"cache at {state.directory} was unreadable ({exc}); moved it to "
                               f"{aside} and rebuilt it: files already in place are verified, not re-downloaded")
            state.entries = {}
            state._load()
        return state

    def _load(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._cache = diskcache.Cache(str(self.directory), eviction_policy="none", statistics=False,
                                      size_limit=1 << 62)
        # One query instead of a get per key: a 100k-entry cache loads in tens of milliseconds.
        # Only raw (never pickled) values are accepted, so a tampered cache cannot run code.
        rows = self._cache._sql("SELECT key, raw, value, mode FROM Cache").fetchall()
        meta = None
        entries: dict[str, Entry] = {}
        for key, raw, value, mode in rows:
            if not raw or mode != diskcache.core.MODE_RAW or not isinstance(key, str) or not isinstance(value, str):
                raise CacheCorrupt(f"unexpected record {key!r}")
            if key == _META:
                meta = value
            elif key.startswith(_FILE):
                entries[key[len(_FILE):]] = Entry.decode(value)
            else:
                raise CacheCorrupt(f"unexpected key {key!r}")
        expected = f"{SCHEMA}\t{self.identity}"
        if meta != expected:
            if entries:
                self.notes.append("cache belonged to another source or version; starting afresh")
            self._cache.clear()
            self._cache.set(_META, expected)
            entries = {}
        self.entries = entries

    def put(self, items: Iterable[tuple[str, Entry]]) -> None:
        """Record written files in one transaction."""
        items = list(items)
        if not items:
            return
        with self._cache.transact():
            for rel, entry in items:
                self._cache.set(_FILE + rel, entry.encode())
        self.entries.update(items)

    def remove(self, rels: Iterable[str]) -> None:
        """Forget paths in one transaction (done before the files themselves are removed)."""
        rels = [r for r in rels if r in self.entries]
        if not rels:
            return
        with self._cache.transact():
            for rel in rels:
                self._cache.delete(_FILE + rel)
        for rel in rels:
            self.entries.pop(rel, None)

    def _set_aside(self) -> Path:
        aside = self.directory.with_name(self.directory.name + f".broken-{int(time.time())}")
        for old in self.directory.parent.glob(self.directory.name + ".broken-*"):
            shutil.rmtree(old, ignore_errors=True)  # keep only the latest broken copy
        if self.directory.exists():
            os.replace(self.directory, aside)
        return aside

    def _close(self) -> None:
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

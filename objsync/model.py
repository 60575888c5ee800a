"""The records that flow through a pull pass, and the names of its kinds and modes. No behaviour here."""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Mapping

if TYPE_CHECKING:  # a LIST-mode pull never loads the pack format
    from objsync.pack import Slot

try:
    from enum import StrEnum
except ImportError:  # Python 3.10
    class StrEnum(str, enum.Enum):
        def __str__(self) -> str:
            return str(self.value)

        def __format__(self, spec: str) -> str:
            return str(self.value).__format__(spec)


class Kind(StrEnum):
    """What sort of problem a pass met."""

    LISTING = "listing"  # the bucket or a manifest could not be read
    FETCH = "fetch"  # an object could not be brought into place
    REJECTED = "rejected"  # a key or manifest that will not be used
    DELETE = "delete"  # a local file could not be removed
    GUARD = "guard"  # deletes were held back by the delete guard


class Action(StrEnum):
    """What a fetch did."""

    FETCHED = "fetched"
    VERIFIED = "verified"  # the local bytes were already right: no download
    FAILED = "failed"


class Verify(StrEnum):
    """How a fetch first checks the local file, to save a download."""

    XXH3 = "xxh3"  # against the hash the cache recorded
    MD5 = "md5"  # against a single-part ETag
    MULTIPART = "multipart"  # against a multipart ETag, for likely part sizes


class Fsync(StrEnum):
    """Durability before files are renamed into place."""

    BATCH = "batch"  # one filesystem sync per batch
    FILE = "file"  # an fsync per file
    NONE = "none"


class Mode(StrEnum):
    """Where a pass's listing came from."""

    LIST = "list"  # one LIST of the prefix
    MANIFEST = "manifest"  # the repos' manifests


@dataclass(frozen=True, slots=True)
class RemoteObject:
    """One object to mirror: full key, ETag (unquoted), size and Last-Modified in ns.

    A manifest also names the object's version and the MD5 of its bytes, to read and check it by.
    """

    key: str
    etag: str
    size: int
    mtime_ns: int
    version_id: str | None = None
    md5: str = ""
    sha256: str = ""  # from a signed manifest: every byte is checked against it
    pack: Slot | None = None  # from a manifest with a pack: where the file lies in it


@dataclass(frozen=True, slots=True)
class LocalFile:
    """A regular file or symlink found in the destination, by lstat."""

    size: int
    mtime_ns: int
    is_link: bool = False


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


@dataclass(frozen=True, slots=True)
class Fetch:
    """Bring one object to the path `rel`; with `verify`, first check whether the local bytes already match."""

    key: str
    rel: str
    etag: str
    size: int
    mtime_ns: int
    reason: str
    verify: Verify | None = None
    expect: str = ""  # the xxh3 that Verify.XXH3 compares with
    version_id: str | None = None  # from a manifest: read exactly this version
    md5: str = ""  # from a manifest: the MD5 of the bytes, checked whatever the ETag's form
    sha256: str = ""  # from a signed manifest: the SHA-256 the bytes must have before they are placed
    pack: Slot | None = None  # where the file lies in its version's pack, when it has one


@dataclass(frozen=True, slots=True)
class Job:
    """Where one fetch is written: the folder `root`, at `path` below it (`fetch.rel` stays the cache's key)."""

    fetch: Fetch
    root: str
    path: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """A key that this pass will not write, and why."""

    key: str
    reason: str


@dataclass(frozen=True)
class Plan:
    """What one pass does: fetches, then (if they all succeed) deletes."""

    listed: int
    fetches: tuple[Fetch, ...]
    deletes: tuple[str, ...]
    displaced: tuple[str, ...]  # local paths in the way of a fetch, removed before it
    rejected: tuple[Rejected, ...]
    skipped: Mapping[str, int]
    delete_blocked: str | None = None  # why the delete guard held every delete back

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())


@dataclass(frozen=True, slots=True)
class FetchResult:
    """The outcome of one fetch, small enough to send back from a worker process."""

    key: str
    rel: str
    etag: str
    size: int
    mtime_ns: int
    xxh3: str
    action: Action
    bytes: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def entry(self) -> Entry:
        return Entry(self.etag, self.size, self.mtime_ns, self.xxh3)


@dataclass(frozen=True)
class Outcome:
    """How the fetches of a pass ended, as publishing needs to know it."""

    failed: frozenset[str] = frozenset()  # paths whose fetch failed
    complete: bool = True  # every fetch ran: the pass was not stopped and no worker died

    @property
    def clean(self) -> bool:
        """True when every fetch ran and succeeded: only then may a pass delete anything."""
        return self.complete and not self.failed

    def succeeded(self, fetches: "Iterable[Fetch]") -> bool:
        """True when each of `fetches` ran and succeeded."""
        return self.complete and not any(f.rel in self.failed for f in fetches)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing a pass could not do: the key or path, what went wrong, and its kind."""

    key: str
    error: str
    kind: Kind


@dataclass(frozen=True)
class PassReport:
    """The outcome of one pass, as `--json` prints it."""

    listed: int = 0
    fetched: int = 0
    verified: int = 0
    deleted: int = 0
    skipped: int = 0
    bytes: int = 0
    seconds: float = 0.0
    errors: tuple[Problem, ...] = ()
    interrupted: bool = False
    plan: Plan | None = field(default=None, compare=False, repr=False)
    mode: Mode = Mode.LIST
    dry_run: bool = False  # the counts are what the pass would do

    @property
    def ok(self) -> bool:
        return not self.errors and not self.interrupted

    @property
    def transfer_failed(self) -> bool:
        """True when the pass did not converge for a reason other than rejected keys."""
        return self.interrupted or any(p.kind != Kind.REJECTED for p in self.errors)

    @property
    def changed(self) -> bool:
        return bool(self.fetched or self.deleted)

    def error_kinds(self) -> dict[str, int]:
        return dict(Counter(str(p.kind) for p in self.errors))

    def as_dict(self) -> dict:
        return {
            "listed": self.listed, "fetched": self.fetched, "verified": self.verified,
            "deleted": self.deleted, "skipped": self.skipped, "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "errors": [{"key": p.key, "error": p.error} for p in self.errors],
            "mode": str(self.mode), "dry_run": self.dry_run,
        }

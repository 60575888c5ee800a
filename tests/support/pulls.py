"""A pull wired as production wires it (objsync.pull.session.Session), on a MemoryBucket, for unit tests.

Only the bucket and the worker pool are stand-ins: `InlineFetcher` runs the real writer
(fetch.run_batch: temp files, checks, renames) on this thread, so a pass takes milliseconds.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from support.memory_bucket import MemoryBucket

from objsync.layout import manifest_key
from objsync.manifest import FileEntry, Manifest
from objsync.model import FetchResult, Fsync, Job, PassReport
from objsync.paths import STATE_DIR
from objsync.pull import localfs
from objsync.pull.config import PullConfig
from objsync.pull.fetch import WriteOptions, run_batch
from objsync.pull.decide import Rules
from objsync.pull.pool import PoolConfig, batches
from objsync.pull.session import Session
from objsync.pull.state import State
from objsync.s3.config import Location, RemoteConfig

PREFIX = "dags"


def _in_order(fn, items) -> list:
    return [fn(item) for item in items]


@dataclass(frozen=True)
class InlineFetcher:
    """A Fetcher that runs each batch with the real writer, one after another, on this thread.

    As with the Pool, no batch starts once `stop` is set. Unlike the Pool, which gives running
    batches a grace period, the reads of the batch in hand that have not started yet end at once
    as cancelled: a test decides exactly where a stop lands.
    """

    bucket: MemoryBucket
    opts: WriteOptions
    batch_files: int = 2  # small, so that a pass has several batches and a stop can fall between two

    def run(self, jobs: Sequence[Job], stop: threading.Event | None = None) -> Iterator[list[FetchResult]]:
        cancelled = stop.is_set if stop is not None else None
        for group in batches(jobs, self.batch_files, 1 << 40):
            if stop is not None and stop.is_set():
                return
            yield run_batch(self.bucket, self.opts, group, _in_order, cancelled)

    def start(self) -> "InlineFetcher":
        return self


@dataclass(frozen=True)
class Rig:
    """One destination kept in sync with a MemoryBucket's `dags/` by one Session."""

    bucket: MemoryBucket
    dest: Path
    state: State
    session: Session

    def run(self, stop: threading.Event | None = None) -> PassReport:
        return self.session.run_pass(stop)

    def files(self) -> dict[str, bytes]:
        """Every file as a reader sees it, through symlinked folders; objsync's own folder aside."""
        out = {}
        for folder, _, names in os.walk(self.dest, followlinks=True):
            rel = Path(folder).relative_to(self.dest).as_posix()
            if rel.partition("/")[0] != STATE_DIR:
                out.update({Path(rel, n).as_posix(): Path(folder, n).read_bytes() for n in names})
        return out

    def claims_only_what_is_in_place(self) -> bool:
        """True when each file the cache records is in place with the recorded size and mtime."""
        for rel, entry in self.state.entries.items():
            try:
                st = (self.dest / rel).stat()
            except FileNotFoundError:
                return False
            if (st.st_size, st.st_mtime_ns) != (entry.size, entry.mtime_ns):
                return False
        return True


@contextmanager
def open_rig(dest: Path, bucket: MemoryBucket, *, rules: Rules = Rules(), atomic: bool = False,
             use_manifests: bool = True) -> Iterator[Rig]:
    """A Session on `dest`, as `objsync pull [--atomic] s3://<bucket>/dags DEST` opens one."""
    # No fsync: durability is not what these tests look at, and a sync of a shared /tmp is slow.
    cfg = PullConfig(source=Location(bucket.name, PREFIX), dest=dest, remote=RemoteConfig(), rules=rules,
                     pool=PoolConfig(workers=0), fsync=Fsync.NONE, atomic=atomic, use_manifests=use_manifests)
    localfs.prepare_root(dest)
    fetcher = InlineFetcher(bucket, WriteOptions(tmp=str(localfs.tmp_dir(dest)), bucket=bucket.name,
                                                 fsync=cfg.fsync))
    with State.open(localfs.state_dir(dest) / "cache", cfg.identity) as state:
        yield Rig(bucket, dest, state, Session(cfg, bucket, state, fetcher))


def publish(bucket: MemoryBucket, repo: str, files: dict[str, bytes]) -> Manifest:
    """What `objsync push` leaves in the bucket: the repo's files, then its manifest, written last."""
    folder = f"{PREFIX}/{repo}/"
    entries = []
    for path, body in files.items():
        stored = bucket.put(folder + path, body)
        entries.append(FileEntry(path, len(body), stored.etag, stored.etag, stored.version_id))
    manifest = Manifest(repo, tuple(entries), None, "2024-05-01T12:00:00Z", "0.1.0")
    bucket.put(manifest_key(PREFIX, repo), manifest.to_json())
    return manifest


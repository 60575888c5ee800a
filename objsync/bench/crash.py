"""Crash trials: kill -9 a pull at a random moment, then check that nothing is partial or misrecorded."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from objsync.paths import STATE_DIR
from objsync.pull.state import State


@dataclass
class Bucket:
    """The objects of one prefix, with every version each key has had, for checking old-or-new."""

    client: object
    name: str
    prefix: str
    current: dict[str, bytes] = field(default_factory=dict)
    seen: dict[str, set[bytes]] = field(default_factory=dict)

    def put(self, rel: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.name, Key=self.prefix + rel, Body=data)
        self.current[rel] = data
        self.seen.setdefault(rel, set()).add(data)

    def delete(self, rel: str) -> None:
        self.client.delete_object(Bucket=self.name, Key=self.prefix + rel)
        self.current.pop(rel, None)


@dataclass(frozen=True)
class TrialResult:
    """One trial: when it was killed, how many files were in place, and every violation found."""

    mode: str
    killed_after: float
    files_present: int
    violations: tuple[str, ...]
    was_running: bool = True  # False when the pull had already exited by itself before the kill


def mutate(bucket: Bucket, rng: random.Random, fraction: float = 0.05) -> None:
    """Overwrite, add and delete a few objects, as an incremental push would."""
    rels = sorted(bucket.current)
    for rel in rng.sample(rels, max(1, int(len(rels) * fraction))):
        bucket.put(rel, os.urandom(rng.randint(200, 60_000)))
    for i in range(max(1, int(len(rels) * fraction / 2))):
        bucket.put(f"added/{rng.getrandbits(40):x}-{i}.py", os.urandom(rng.randint(200, 60_000)))
    for rel in rng.sample(sorted(bucket.current), max(1, int(len(rels) * fraction / 2))):
        bucket.delete(rel)


def check(dest: Path, bucket: Bucket, identity: str) -> list[str]:
    """Violations after a crash: partial files, files of no version, cache entries that lie."""
    problems: list[str] = []
    on_disk: dict[str, bytes] = {}
    for path in dest.rglob("*"):
        rel = path.relative_to(dest).as_posix()
        if rel.split("/", 1)[0] == STATE_DIR or not path.is_file():
            continue
        data = path.read_bytes()
        on_disk[rel] = data
        if data not in bucket.seen.get(rel, ()):
            problems.append(f"{rel}: {len(data)} bytes match no version of its object (partial or corrupt)")
    with State.open(dest / STATE_DIR / "cache", identity) as state:
        problems.extend(f"cache: {n}" for n in state.notes)
        for rel, entry in state.entries.items():
            path = dest / rel
            if not path.exists():
                continue  # a stale entry is harmless: the next pass sees the file missing
            st = path.stat()
            unchanged = (st.st_size, st.st_mtime_ns) == (entry.size, entry.mtime_ns)
            # Where stat says "as written", the bytes must be the cached ETag's (single-part ETags are MD5s).
            if unchanged and "-" not in entry.etag and hashlib.md5(on_disk[rel]).hexdigest() != entry.etag:
                problems.append(f"cache claims {rel} holds ETag {entry.etag}, but its bytes differ")
    return problems


def time_cold_pass(argv: list[str], env: dict[str, str], dest: Path, cold: bool = True) -> tuple[float, float]:
    """Seconds until a cold pass puts its first file in place, and until it ends.

    With `cold=False` the folder is kept, and the first number means nothing.
    """
    if cold:
        shutil.rmtree(dest, ignore_errors=True)
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "objsync", *argv], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = None
    while proc.poll() is None:
        if first is None and _has_files(dest):
            first = time.monotonic() - started
        time.sleep(0.005)
    total = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError(f"a cold pass failed with exit status {proc.returncode}")
    return first or total, total


def run_trial(argv: list[str], env: dict[str, str], dest: Path, bucket: Bucket, identity: str,
              rng: random.Random, mode: str, max_delay: float, min_delay: float = 0.05,
              after_first_file: bool = False) -> TrialResult:
    """Start a pull, SIGKILL its whole process tree after a random delay, and check the folder.

    With `after_first_file`, the delay starts when the first file appears, so the kill lands in
    the middle of the downloads however long start-up takes on a busy machine.
    """
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "objsync", *argv], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if after_first_file:
        while proc.poll() is None and not _has_files(dest):
            time.sleep(0.002)
    time.sleep(rng.uniform(min_delay, max_delay))
    delay = time.monotonic() - started
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    status = proc.wait()
    _reap_group(proc.pid)
    present = sum(1 for p in dest.rglob("*") if p.is_file() and STATE_DIR not in p.parts) if dest.exists() else 0
    violations = check(dest, bucket, identity) if dest.exists() else []
    return TrialResult(mode, delay, present, tuple(violations), was_running=status == -signal.SIGKILL)


def _has_files(dest: Path) -> bool:
    """True once a file is in place below `dest`: folders come first, files land a batch at a time."""
    for dirpath, dirnames, filenames in os.walk(dest):
        if dirpath == str(dest):
            dirnames[:] = [d for d in dirnames if d != STATE_DIR]
        if filenames:
            return True
    return False


def _reap_group(pgid: int) -> None:
    """Wait until no process of the killed group is left (forkserver children exit on their own)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            return
        time.sleep(0.02)

"""The local side: scanning the destination, symlink-safe writes, deletes, pruning and the lock."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from objsync.paths import STATE_DIR, parents

TMP_SUFFIX = ".part"  # never '.py', so Airflow never parses a file being written


@dataclass(frozen=True, slots=True)
class LocalFile:
    """A regular file or symlink found in the destination, by lstat."""

    size: int
    mtime_ns: int
    is_link: bool = False


class UnsafePath(OSError):
    """Writing here would leave the destination or pass through a symlink."""


class Locked(RuntimeError):
    """Another objsync holds the destination's lock."""


def state_dir(root: Path) -> Path:
    return Path(root) / STATE_DIR


def tmp_dir(root: Path) -> Path:
    return state_dir(root) / "tmp"


def prepare_root(root: Path) -> None:
    """Create the destination and its state folders; a destination that is a file is an error."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"destination {root} exists and is not a directory", str(root))
    tmp_dir(root).mkdir(parents=True, exist_ok=True)


def scan(root: Path) -> dict[str, LocalFile]:
    """Every file and symlink below `root` by relative path, skipping objsync's own folder.

    Symlinked directories are listed as links and never entered.
    """
    found: dict[str, LocalFile] = {}
    stack = [("", str(root))]
    while stack:
        rel_dir, abs_dir = stack.pop()
        try:
            entries = os.scandir(abs_dir)
        except FileNotFoundError:
            continue
        with entries:
            for entry in entries:
                rel = rel_dir + entry.name
                if not rel_dir and entry.name == STATE_DIR:
                    continue
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    stack.append((rel + "/", entry.path))
                elif stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
                    found[rel] = LocalFile(st.st_size, st.st_mtime_ns, stat.S_ISLNK(st.st_mode))
    return found


def ensure_parent(root: Path, rel: str, known_dirs: set[str] | None = None) -> Path:
    """Create the parent folders of `rel` below `root`, refusing any component that is a symlink.

    Returns the absolute target path. `known_dirs` caches folders already checked in this batch.
    """
    root_s = str(root)
    for parent in parents(rel):
        if known_dirs is not None and parent in known_dirs:
            continue
        path = os.path.join(root_s, parent)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            try:
                os.mkdir(path)
            except FileExistsError:
                pass  # made by another worker meanwhile; checked below
            st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            raise UnsafePath(errno.ELOOP, f"refusing to write through the symlink {parent!r}", path)
        if not stat.S_ISDIR(st.st_mode):
            raise UnsafePath(errno.ENOTDIR, f"{parent!r} is a file where a folder is needed", path)
        if known_dirs is not None:
            known_dirs.add(parent)
    return Path(root_s, rel)


def replace_into_place(tmp: str, target: Path) -> None:
    """Rename the finished temp file onto the target; an empty folder in the way is removed first."""
    try:
        os.replace(tmp, target)
    except IsADirectoryError:
        os.rmdir(target)  # only succeeds when empty: files below are never dropped here
        os.replace(tmp, target)


def remove_file(root: Path, rel: str) -> bool:
    """Unlink one file or symlink (never following it); True if something was removed."""
    path = os.path.join(str(root), rel)
    for parent in parents(rel):
        if os.path.islink(os.path.join(str(root), parent)):
            return False  # the path leaves the tree through a symlink: not ours to delete
    try:
        os.unlink(path)
        return True
    except FileNotFoundError:
        return False


def prune_empty_dirs(root: Path, rels: list[str]) -> int:
    """Remove folders left empty by deletes, bottom-up, never `root` itself; returns how many."""
    candidates = sorted({p for rel in rels for p in parents(rel)}, key=lambda p: p.count("/"), reverse=True)
    removed = 0
    for rel in candidates:
        path = os.path.join(str(root), rel)
        if os.path.islink(path):
            continue
        try:
            os.rmdir(path)
            removed += 1
        except OSError:
            pass  # not empty, or gone: either way nothing to do
    return removed


def clean_tmp(root: Path) -> int:
    """Remove temp files left by an interrupted run; returns how many."""
    removed = 0
    directory = tmp_dir(root)
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return 0
    for name in names:
        try:
            os.unlink(directory / name)
            removed += 1
        except OSError:
            pass
    return removed


class DirLock:
    """An exclusive flock on LOCAL_DIR/.objsync/lock that records the holder's PID."""

    def __init__(self, root: Path) -> None:
        self.path = state_dir(root) / "lock"
        self._fd: int | None = None

    def acquire(self) -> "DirLock":
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise Locked(f"another objsync (pid {holder}) is syncing into {self.path.parent.parent}; "
                         f"stop it or choose another folder") from None
        # flock dies with its holder, so a lock left by a killed process is simply taken over.
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "DirLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

"""The destination folder: its state folders, symlink-safe deletes and pruning, temp clean-up and the lock."""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
from pathlib import Path

from objsync.paths import STATE_DIR, parents


class Locked(RuntimeError):
    """Another objsync holds the destination's lock."""


class Unusable(OSError):
    """The destination cannot be used at all; the message names it and says what to do."""

    def __str__(self) -> str:
        return self.strerror or super().__str__()


def state_dir(root: Path) -> Path:
    return Path(root) / STATE_DIR


def tmp_dir(root: Path) -> Path:
    return state_dir(root) / "tmp"


def check_root(root: Path) -> None:
    """Raise Unusable when the destination exists and is not a folder."""
    if Path(root).exists() and not Path(root).is_dir():
        raise Unusable(errno.ENOTDIR, f"destination {root} exists and is not a directory; "
                                      f"give a folder, or a path where one can be created")


def footprint(root: Path) -> tuple[Path, ...]:
    """What opening a destination may create, outermost first: the folder (and its parents), state folders, lock."""
    root = Path(root).absolute()
    return (*reversed(root.parents), root, state_dir(root), tmp_dir(root), state_dir(root) / "cache",
            state_dir(root) / "lock")


def remove_new(root: Path, new: frozenset[Path]) -> None:
    """Remove, innermost first, the paths of `footprint` in `new` (those this run created).

    A folder goes only when empty, except the cache, which holds nothing but what this run wrote.
    """
    cache = state_dir(Path(root).absolute()) / "cache"
    for path in reversed(footprint(root)):
        if path not in new:
            continue
        try:
            if path == cache:
                shutil.rmtree(path)  # refuses a symlink
            elif path.is_dir() and not path.is_symlink():
                path.rmdir()
            else:
                path.unlink()
        except OSError:
            pass  # in use, or not empty after all: leaving it is always safe


def prepare_root(root: Path) -> None:
    """Create the destination and its state folders, or raise Unusable saying why that cannot be done."""
    root = Path(root)
    check_root(root)
    for path in (state_dir(root), tmp_dir(root), state_dir(root) / "cache"):
        # The lock, the cache and temp files live here: a symlink would take their writes elsewhere.
        if path.is_symlink():
            raise Unusable(errno.ELOOP, f"{path} is a symlink; objsync keeps its own state there and never "
                                        f"writes through a symlink: remove it, and objsync recreates the folder")
        if path != state_dir(root) / "cache":
            try:
                path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise unusable(exc, root) from None


def unusable(exc: OSError, root: Path) -> Unusable:
    """Explain an OSError met while setting up `root`, with what to do about it."""
    code = exc.errno
    if code == errno.EROFS:
        why = f"{root} is on a read-only file system; mount it read-write or choose another folder"
    elif code in (errno.EACCES, errno.EPERM):
        why = (f"permission denied writing in {root} ({exc.strerror}); give user {os.geteuid()} write access "
               f"to it and to its {STATE_DIR}/ folder, or clear an immutable attribute (chattr -i)")
    elif code in (errno.ENOSPC, errno.EDQUOT):
        why = f"no space left on the device of {root} ({exc.strerror}); free some space and run again"
    else:
        why = f"cannot use {root}: {exc.strerror or exc}"
    return Unusable(code or errno.EIO, why)


def _open_parent(root: Path, rel: str) -> int | None:
    """A descriptor of `rel`'s parent folder, reached without following any symlink; None if there is none."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name in rel.split("/")[:-1]:
            child = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = child
    except (FileNotFoundError, NotADirectoryError):
        os.close(fd)
        return None
    except OSError as exc:
        os.close(fd)
        if exc.errno == errno.ELOOP:
            return None  # the path leaves the tree through a symlink: nothing below it is ours
        raise
    return fd


def remove_file(root: Path, rel: str) -> bool:
    """Unlink one file or symlink (never following a symlink on the way); True if something was removed."""
    parent = _open_parent(root, rel)
    if parent is None:
        return False
    try:
        os.unlink(rel.rpartition("/")[2], dir_fd=parent)
        return True
    except FileNotFoundError:
        return False
    finally:
        os.close(parent)


def prune_empty_dirs(root: Path, rels: list[str]) -> int:
    """Remove folders left empty by deletes, bottom-up, never `root` itself; returns how many."""
    candidates = sorted({p for rel in rels for p in parents(rel)}, key=lambda p: p.count("/"), reverse=True)
    removed = 0
    for rel in candidates:
        try:
            parent = _open_parent(root, rel)
        except OSError:
            continue
        if parent is None:
            continue
        try:
            os.rmdir(rel.rpartition("/")[2], dir_fd=parent)  # never follows a symlink at the end
            removed += 1
        except OSError:
            pass  # not empty, a symlink, or gone: either way nothing to do
        finally:
            os.close(parent)
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
        root = self.path.parent.parent
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise Unusable(errno.ELOOP, f"{self.path} is a symlink; objsync never writes through one: "
                                            f"remove it") from None
            raise unusable(exc, root) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise Locked(f"another objsync (pid {holder}) is syncing into {root}; "
                         f"stop it or choose another folder") from None
        # flock dies with its holder, so a lock left by a killed process is simply taken over.
        try:
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
        except OSError:
            pass  # the PID is a courtesy for the next one to come: a full disk must not stop the sync
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

"""Where written files go: folder handles below each output root, temp files, and the rename into place.

Every folder is opened with O_NOFOLLOW from its root down, so a symlink planted in the tree can
never take a write elsewhere. Temp files live in one folder on the roots' filesystem, so the final
rename is atomic and a crash leaves nothing half-written under a real name.
"""

from __future__ import annotations

import errno
import functools
import itertools
import os
import stat
import threading
from typing import Iterable

from objsync.model import Fetch, Job

TMP_SUFFIX = ".part"  # never '.py', so Airflow never parses a file being written


class UnsafePath(OSError):
    """Writing here would leave the destination or pass through a symlink."""


class DirHandles:
    """Open folder descriptors below one root, walked with O_NOFOLLOW so no symlink is ever followed."""

    def __init__(self, root: str) -> None:
        self.root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        self._fds: dict[str, int] = {"": self.root_fd}
        self._lock = threading.Lock()

    def parent_fd(self, path: str) -> int:
        """The descriptor of `path`'s parent folder, creating folders as needed."""
        parent, _, _ = path.rpartition("/")
        with self._lock:
            return self._open(parent)

    def _open(self, rel_dir: str) -> int:
        fd = self._fds.get(rel_dir)
        if fd is not None:
            return fd
        up, _, name = rel_dir.rpartition("/")
        up_fd = self._open(up)
        try:
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=up_fd)
        except FileNotFoundError:
            try:
                os.mkdir(name, 0o775, dir_fd=up_fd)
            except FileExistsError:
                pass
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=up_fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                kind = "a symlink" if _is_link(name, up_fd) else "a file"
                raise UnsafePath(exc.errno, f"{rel_dir!r} is {kind} where a folder is needed; "
                                            f"refusing to write through it") from None
            raise
        self._fds[rel_dir] = fd
        return fd

    def close(self) -> None:
        with self._lock:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()


class Places:
    """Where each fetch of a batch is written: its job's root and path, reached through DirHandles."""

    def __init__(self, jobs: Iterable[Job]) -> None:
        self._jobs = {job.fetch.rel: job for job in jobs}
        self._roots: dict[str, DirHandles] = {}
        self._lock = threading.Lock()

    def parent_fd(self, fetch: Fetch) -> int:
        """The folder that will hold the fetch's file, created as needed."""
        job = self._jobs[fetch.rel]
        with self._lock:
            handles = self._roots.get(job.root)
            if handles is None:
                handles = self._roots[job.root] = DirHandles(job.root)
        return handles.parent_fd(job.path)

    def name(self, fetch: Fetch) -> str:
        """The file's name in that folder."""
        return self._jobs[fetch.rel].path.rpartition("/")[2]

    def any_fd(self) -> int | None:
        """A descriptor on the roots' filesystem, for one sync of all of it."""
        return next((h.root_fd for h in self._roots.values()), None)

    def close(self) -> None:
        with self._lock:
            for handles in self._roots.values():
                handles.close()
            self._roots.clear()


def _is_link(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode)
    except OSError:
        return False


_counter = itertools.count(1)  # next() on a count is atomic under the GIL


@functools.lru_cache(maxsize=8)
def _tmp_prefix(tmp: str, pid: int) -> str:
    return os.path.join(tmp, f"{pid}-")


def make_temp(tmp: str) -> tuple[int, str]:
    """A new, exclusive temp file in the folder `tmp`: (descriptor, path)."""
    path = f"{_tmp_prefix(tmp, os.getpid())}{next(_counter)}{TMP_SUFFIX}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    return fd, path


def write_all(fd: int, data: bytes) -> None:
    """Write every byte: a write cut short (a filling disk) is continued, so its error is raised."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def replace(tmp_path: str, name: str, parent_fd: int) -> None:
    """Rename a temp file over `name` in the folder `parent_fd`."""
    try:
        os.replace(tmp_path, name, dst_dir_fd=parent_fd)
    except IsADirectoryError:
        os.rmdir(name, dir_fd=parent_fd)  # succeeds only when empty: the plan moved its files aside
        os.replace(tmp_path, name, dst_dir_fd=parent_fd)


def sync_filesystem(fd: int) -> None:
    """Flush the filesystem of `fd` once (Linux syncfs), so renames never precede their data."""
    syncfs = _syncfs()
    if syncfs is not None and syncfs(fd) == 0:
        return
    os.sync()


def sync_path(path: str) -> None:
    """sync_filesystem for the filesystem holding the folder `path`."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        sync_filesystem(fd)
    finally:
        os.close(fd)


@functools.cache
def _syncfs():
    # Loaded on first use: ctypes costs every --once pull its import, and most pulls never sync.
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.syncfs
    except (OSError, AttributeError):
        return None


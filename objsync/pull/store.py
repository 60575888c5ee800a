"""The snapshot store of `--atomic`: complete trees under `.objsync/snapshots/<top>/<name>`, shown by symlinks.

`LOCAL_DIR/<top>` points at the current tree. A new tree is renamed into the store, then a new
symlink is renamed over the old one: a reader sees the old tree or the new one, never a mix.
Replaced trees are retired, and removed after `--keep-snapshots`, for the processes still reading
them. `.objsync/.airflowignore` keeps Airflow's walk out of the store, so that it meets each tree
once, through its symlink, and never raises "Detected recursive loop".
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import stat
import time
from typing import Callable

from objsync.paths import STATE_DIR
from objsync.pull.localfs import tmp_dir

STORE = f"{STATE_DIR}/snapshots"
RETIRED = ".retired"  # a marker beside a tree that is no longer current; its mtime is when it left
# Airflow reads .airflowignore in every folder it walks; these names are matched as regexps (the
# default syntax) and as globs alike, so the store, temp files and cache are never walked.
IGNORE = "snapshots\ntmp\ncache\n"


def current(root: str, top: str) -> str | None:
    """The name of the tree `LOCAL_DIR/<top>` shows, when it is one of our symlinks into the store."""
    try:
        target = os.readlink(os.path.join(root, top))
    except OSError:
        return None
    prefix = f"{STORE}/{top}/"
    name = target[len(prefix):] if target.startswith(prefix) else ""
    if not name or "/" in name or name.startswith(".") or name.endswith(RETIRED):
        return None
    try:
        return name if stat.S_ISDIR(os.lstat(os.path.join(root, STORE, top, name)).st_mode) else None
    except OSError:
        return None


def ensure_ignore(root: str) -> None:
    """Write `.objsync/.airflowignore` unless it already holds exactly IGNORE."""
    path = os.path.join(root, STATE_DIR, ".airflowignore")
    try:
        with open(path, "rb") as fh:
            if fh.read() == IGNORE.encode():
                return
    except OSError:
        pass
    tmp = os.path.join(tmp_dir(root), f"airflowignore-{os.getpid()}.part")
    with open(tmp, "wb") as fh:
        fh.write(IGNORE.encode())
    os.replace(tmp, path)


def publish(root: str, top: str, building: str, name: str, *, sync: Callable[[], None] | None = None) -> None:
    """Make the tree built at `building` what `LOCAL_DIR/<top>` shows, as `name`, in one rename.

    The old tree is retired, not removed.
    """
    store = os.path.join(root, STORE, top)
    final = os.path.join(store, name)
    os.rename(building, final)
    empty = not os.listdir(final)
    if sync is not None:
        sync()  # the new tree is on disk before any reader can reach it
    dest = os.path.join(root, top)
    old = current(root, top)
    if old is not None:
        _retire(store, old)
    try:
        is_dir = stat.S_ISDIR(os.lstat(dest).st_mode)
    except FileNotFoundError:
        is_dir = False
    if empty:
        # Nothing is left below this folder: it goes in one step, as a whole.
        if old is not None:
            os.unlink(dest)
        elif is_dir:
            legacy = f"legacy-{time.time_ns()}"
            os.rename(dest, os.path.join(store, legacy))
            _retire(store, legacy)
        _retire(store, name)
        return
    link = os.path.join(store, f".link-{time.time_ns()}")
    os.symlink(f"{STORE}/{top}/{name}", link)
    if is_dir:
        # A plain folder from before --atomic: swap it with the link in one step, then retire it.
        legacy = f"legacy-{time.time_ns()}"
        if _exchange(link, dest):
            os.rename(link, os.path.join(store, legacy))
        else:
            os.rename(dest, os.path.join(store, legacy))
            os.rename(link, dest)
        _retire(store, legacy)
    else:
        os.replace(link, dest)


def remove_tree(path: str) -> None:
    """Remove whatever is at `path`: a folder tree, a file or a link; nothing when it is gone."""
    _remove(path)


def collect(root: str, keep: float, now: Callable[[], float] = time.time) -> int:
    """Remove trees retired more than `keep` seconds ago, and unfinished ones; returns how many went."""
    store = os.path.join(root, STORE)
    try:
        tops = os.listdir(store)
    except FileNotFoundError:
        return 0
    removed = 0
    for top in tops:
        folder = os.path.join(store, top)
        try:
            names = set(os.listdir(folder))
        except NotADirectoryError:
            os.unlink(folder)
            continue
        shown = current(root, top)
        for name in sorted(names):
            path = os.path.join(folder, name)
            if name.endswith(RETIRED):
                if name[:-len(RETIRED)] not in names:
                    os.unlink(path)
                continue
            if name.startswith("."):
                _remove(path)  # a tree or link left unfinished by an interrupted run
                removed += 1
                continue
            marker = path + RETIRED
            if name == shown:
                if name + RETIRED in names:
                    os.unlink(marker)
                continue
            if name + RETIRED not in names:
                _retire(folder, name)  # found unused (--atomic was turned off, or a crash): its time starts now
                continue
            if now() - os.lstat(marker).st_mtime >= keep:
                _remove(path)
                os.unlink(marker)
                removed += 1
        if not os.listdir(folder):
            os.rmdir(folder)
    return removed


def _retire(store: str, name: str) -> None:
    marker = os.path.join(store, name + RETIRED)
    with open(marker, "wb"):
        pass
    os.utime(marker)


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: str, b: str) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where that is not available."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), b)

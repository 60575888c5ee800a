"""What is in the destination: one scanner of files and symlinks by lstat, never following a symlink."""

from __future__ import annotations

import os
import stat
from typing import Iterator

from objsync.model import LocalFile
from objsync.paths import STATE_DIR


def scan_tree(path: str, rel_prefix: str = "") -> dict[str, LocalFile]:
    """Every file and symlink below the folder `path`, keyed `rel_prefix + relative path` (see walk_tree)."""
    return dict(walk_tree(path, rel_prefix))


def walk_tree(path: str, rel_prefix: str = "") -> Iterator[tuple[str, LocalFile]]:
    """Each file and symlink below the folder `path`, in the order of their paths, as a sorted listing has them.

    Yields (`rel_prefix + relative path`, LocalFile). Symlinked folders are listed as links and never
    entered. Only the root's own `.objsync` is skipped; deeper down it is an ordinary name. Entries
    that vanish during the scan (Airflow writes and removes `__pycache__` files all the time) are
    left out. Only the names of the folders on the way down are held, never the tree's.
    """
    stack = [(os.path.join(path, ""), rel_prefix, iter(_names(path)))]  # folders end in "/": names are appended
    while stack:
        abs_dir, rel_dir, names = stack[-1]
        name = next(names, None)
        if name is None:
            stack.pop()
            continue
        name = name.removesuffix("/")
        rel = rel_dir + name
        if rel == STATE_DIR:
            continue
        full = abs_dir + name
        try:
            st = os.lstat(full)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if stat.S_ISDIR(st.st_mode):
            stack.append((full + "/", rel + "/", iter(_names(full))))
        elif stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
            yield rel, LocalFile(st.st_size, st.st_mtime_ns, stat.S_ISLNK(st.st_mode))


def _names(folder: str) -> list[str]:
    """A folder's names in path order: a sub-folder sorts as its name and "/", as its files' paths do."""
    try:
        with os.scandir(folder) as entries:
            return sorted(e.name + "/" if _is_dir(e) else e.name for e in entries)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def scan_below(root: str, top: str) -> dict[str, LocalFile]:
    """The files at or below the top-level name `top` of `root`, keyed by path from the root."""
    return dict(walk_below(root, top))


def walk_below(root: str, top: str) -> Iterator[tuple[str, LocalFile]]:
    """The files at or below the top-level name `top` of `root` as they are found, by path from the root."""
    path = os.path.join(root, top)
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return
    if stat.S_ISDIR(st.st_mode):
        yield from walk_tree(path, top + "/")
    elif stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
        yield top, LocalFile(st.st_size, st.st_mtime_ns, stat.S_ISLNK(st.st_mode))


def top_names(root: str) -> set[str]:
    """The names directly in the destination, objsync's own folder aside."""
    try:
        return {name for name in os.listdir(root) if name != STATE_DIR}
    except FileNotFoundError:
        return set()

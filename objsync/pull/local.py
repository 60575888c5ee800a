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
    """Each file and symlink below the folder `path` as it is found: (`rel_prefix + relative path`, LocalFile).

    Symlinked folders are listed as links and never entered. Only the root's own `.objsync` is
    skipped; deeper down it is an ordinary name. Entries that vanish during the scan (Airflow writes
    and removes `__pycache__` files all the time) are left out.
    """
    stack = [(rel_prefix, path)]
    while stack:
        rel_dir, abs_dir = stack.pop()
        try:
            entries = os.scandir(abs_dir)
        except (FileNotFoundError, NotADirectoryError):
            continue
        with entries:
            for entry in entries:
                rel = rel_dir + entry.name
                if rel == STATE_DIR:
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    stack.append((rel + "/", entry.path))
                elif stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
                    yield rel, LocalFile(st.st_size, st.st_mtime_ns, stat.S_ISLNK(st.st_mode))


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

"""Atomic snapshots (`--atomic`): each top-level folder is a symlink to a complete tree that never changes.

`LOCAL_DIR/<top>` points at `.objsync/snapshots/<top>/<name>`. A new version is built beside the
current one (unchanged files hard-linked from it, changed ones downloaded into it), then published by
renaming a new symlink over the old one: a reader sees the old tree or the new one, never a mix.
Old trees stay for `--keep-snapshots`, for the processes still reading them, then are removed.
`.objsync/.airflowignore` keeps Airflow's walk out of the store, so that it meets each tree once,
through its symlink, and never raises "Detected recursive loop".
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import stat
import time
from dataclasses import dataclass, replace
from typing import Callable, Mapping

from objsync.model import Entry, Fetch, LocalFile, Plan
from objsync.paths import STATE_DIR
from objsync.pull.listing import Version, scan_below, scan_tree
from objsync.pull.localfs import tmp_dir

STORE = f"{STATE_DIR}/snapshots"
RETIRED = ".retired"  # a marker beside a tree that is no longer current; its mtime is when it left
DEFAULT_KEEP = 300.0
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


def scan(root: str, top: str) -> dict[str, LocalFile]:
    """The local files at or below `top`; one of our symlinks is read as the tree it shows."""
    name = current(root, top)
    if name is None:
        return scan_below(root, top)
    return scan_tree(os.path.join(root, STORE, top, name), top + "/")


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


@dataclass(frozen=True)
class Build:
    """A new tree for one top-level folder, being filled at `.objsync/snapshots/<top>/.building-<name>`."""

    top: str
    name: str
    fetches: tuple[Fetch, ...]
    gone: frozenset[str]  # paths (from the root) that the new tree leaves out: deletes and displaced

    @property
    def building(self) -> str:
        return f"{STORE}/{self.top}/.building-{self.name}"

    def inside(self, rel: str) -> str:
        """Where a path of this top-level folder is written while the tree is built."""
        return f"{self.building}/{rel[len(self.top) + 1:]}"


def plan_builds(p: Plan, versions: Mapping[str, Version], stamp: int) -> dict[str, Build]:
    """One Build per top-level folder that the plan changes (fetches, deletes or displaced files below it)."""
    touched: dict[str, list] = {}
    for rel in (*p.deletes, *p.displaced, *(f.rel for f in p.fetches)):
        top, sep, _ = rel.partition("/")
        if sep:
            touched.setdefault(top, [])
    for f in p.fetches:
        top, sep, _ = f.rel.partition("/")
        if sep:
            touched[top].append(f)
    gone = [rel for rel in (*p.deletes, *p.displaced) if "/" in rel]
    builds = {}
    for top, fetches in sorted(touched.items()):
        version = versions.get(top)
        name = f"{version.manifest.id}-{stamp}" if version else str(stamp)
        builds[top] = Build(top, name, tuple(fetches),
                            frozenset(rel for rel in gone if rel.startswith(top + "/")))
    return builds


def prepare(root: str, build: Build, local: Mapping[str, LocalFile]) -> None:
    """Create the tree's folder and hard-link into it every current file that stays."""
    base = os.path.join(root, build.building)
    os.makedirs(base)
    name = current(root, build.top)
    source = os.path.join(root, STORE, build.top, name) if name else os.path.join(root, build.top)
    for rel in sorted(local):
        if not rel.startswith(build.top + "/") or rel in build.gone:
            continue
        sub = rel[len(build.top) + 1:]
        dst = os.path.join(base, sub)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        try:
            os.link(os.path.join(source, sub), dst, follow_symlinks=False)
        except FileNotFoundError:
            pass  # gone since the scan: a fetch brings it back if it is listed
        except OSError:
            shutil.copy2(os.path.join(source, sub), dst, follow_symlinks=False)


class DeferredState:
    """The cache as the fetch step sees it: entries for files in a tree being built wait for its publication."""

    def __init__(self, state, builds: Mapping[str, Build]) -> None:
        self.state = state
        self.entries = state.entries
        self.held: dict[str, dict[str, Entry]] = {top: {} for top in builds}
        self._builds = builds

    def put(self, items) -> None:
        direct = []
        for rel, entry in items:
            top = rel[len(STORE) + 1:].partition("/")[0] if rel.startswith(STORE + "/") else None
            build = self._builds.get(top) if top is not None else None
            if build is not None and rel.startswith(build.building + "/"):
                self.held[top][f"{top}/{rel[len(build.building) + 1:]}"] = entry
            else:
                direct.append((rel, entry))
        self.state.put(direct)

    def remove(self, rels) -> None:
        self.state.remove(rels)


def publish(root: str, build: Build, *, sync: Callable[[], None] | None = None) -> None:
    """Make the built tree what `LOCAL_DIR/<top>` shows, in one rename; the old tree is retired, not removed."""
    store = os.path.join(root, STORE, build.top)
    final = os.path.join(store, build.name)
    os.rename(os.path.join(root, build.building), final)
    empty = not os.listdir(final)
    if sync is not None:
        sync()  # the new tree is on disk before any reader can reach it
    dest = os.path.join(root, build.top)
    old = current(root, build.top)
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
        _retire(store, build.name)
        return
    link = os.path.join(store, f".link-{time.time_ns()}")
    os.symlink(f"{STORE}/{build.top}/{build.name}", link)
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


def discard(root: str, build: Build) -> None:
    """Remove a tree that will not be published."""
    shutil.rmtree(os.path.join(root, build.building), ignore_errors=True)


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


def rel_map(builds: Mapping[str, Build], fetches) -> tuple[Fetch, ...]:
    """The fetches of the plan, those below a rebuilt folder pointed into its new tree."""
    out = []
    for f in fetches:
        build = builds.get(f.rel.partition("/")[0]) if "/" in f.rel else None
        out.append(replace(f, rel=build.inside(f.rel)) if build is not None else f)
    return tuple(out)


def apply(cfg, p: Plan, versions: Mapping[str, Version], local: Mapping[str, LocalFile], state, pool, problems: list,
          started: float, *, stop, on_results, in_place, keep: float = DEFAULT_KEEP):
    """Carry out a plan so that each changed top-level folder is published as one new tree.

    `in_place` is the ordinary step (fetch, cache, guarded deletes); it runs the fetches of the new
    trees together with those of top-level files, so deletes anywhere still wait for every fetch.
    """
    from objsync.model import Problem
    from objsync.pull.fetch import _sync_filesystem

    root = str(cfg.dest)
    ensure_ignore(root)
    builds = {} if p.delete_blocked else plan_builds(p, versions, time.time_ns())
    if p.delete_blocked:
        for top in sorted({f.rel.partition("/")[0] for f in p.fetches if "/" in f.rel}):
            problems.append(Problem(f"{top}/", "its new version waits: deletes are held back this pass, and a "
                                               "version without them would be a mix", "guard"))
    for build in builds.values():
        prepare(root, build, local)
    nested = [f for f in p.fetches if "/" in f.rel]
    step = replace(p, fetches=rel_map(builds, [f for f in p.fetches if "/" not in f.rel]
                                      + [f for f in nested if f.rel.partition("/")[0] in builds]),
                   deletes=tuple(r for r in p.deletes if "/" not in r),
                   displaced=tuple(r for r in p.displaced if "/" not in r))
    deferred = DeferredState(state, builds)
    report = in_place(cfg, step, deferred, pool, problems, started, stop=stop, on_results=on_results)
    prefix = cfg.prefix
    failed = {x.key[len(prefix):].partition("/")[0] for x in report.errors if x.kind == "fetch"}
    deletes = set(p.deletes)
    deleted = report.deleted
    errors = list(report.errors)

    def sync() -> None:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            _sync_filesystem(fd)
        finally:
            os.close(fd)

    for top, build in builds.items():
        if report.interrupted or top in failed or (build.gone and failed):
            discard(root, build)  # the folder keeps its current tree; the next pass tries again
            continue
        state.remove(sorted(build.gone))  # forget first: the cache never claims a file that is gone
        try:
            publish(root, build, sync=None if cfg.fsync == "none" else sync)
        except OSError as exc:
            discard(root, build)
            errors.append(Problem(f"{top}/", f"cannot publish its new tree: {exc.strerror or exc}", "fetch"))
            continue
        state.put(deferred.held[top].items())
        deleted += len(build.gone & deletes)
    collect(root, keep)
    return replace(report, deleted=deleted, errors=tuple(errors))

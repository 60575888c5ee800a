"""The folder a push publishes: scanning, default skips, name checks, hashing and the compile check."""

from __future__ import annotations

import fnmatch
import hashlib
import os
import stat
import warnings
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

from objsync.paths import Filter, UnsafeKey, check_relative, nfc
from objsync.s3.etag import EtagHasher

SKIP_DIRS = frozenset({"__pycache__", ".git"})
SKIP_FILES = ("*.pyc", ".git", "*~", ".#*", "*.swp", "*.swo", ".DS_Store")  # build and editor droppings
_CHUNK = 1 << 20
# Compiling is CPU-bound and holds the GIL: worth worker processes only for a large batch.
_PARALLEL_COMPILE_BYTES = 4 << 20


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A file to publish: its path relative to the source folder, where to read it, size, MD5, ETag, SHA-256."""

    rel: str
    path: str
    size: int
    md5: str
    etag: str
    sha256: str = ""


@dataclass(frozen=True, slots=True)
class Problem:
    """A local file that blocks the push, and why; `line` for compile errors."""

    rel: str
    reason: str
    line: int | None = None

    def where(self, root: Path | str) -> str:
        """`root/rel`, with `:line` when there is one, as editors and CI logs link it."""
        return os.path.join(str(root), self.rel) + (f":{self.line}" if self.line else "")


@dataclass(frozen=True)
class SourceScan:
    """Everything found below the source folder: files to publish, problems and skip counts."""

    files: tuple[SourceFile, ...]
    problems: tuple[Problem, ...]
    skipped: Mapping[str, int]


def is_dropping(name: str, is_dir: bool) -> bool:
    """True for build output and editor files that are never published."""
    if is_dir:
        return name in SKIP_DIRS
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in SKIP_FILES)


def scan_source(root: Path, flt: Filter = Filter()) -> SourceScan:
    """Walk `root` and hash every file to publish; nothing below is uploaded while `problems` is non-empty."""
    root_real = os.path.realpath(root)
    files: list[SourceFile] = []
    problems: list[Problem] = []
    skipped: Counter[str] = Counter()
    stack = [("", str(root))]
    while stack:
        rel_dir, abs_dir = stack.pop()
        try:
            listed = _listdir(abs_dir)
        except OSError as exc:
            problems.append(Problem(rel_dir.rstrip("/") or ".", f"cannot be listed: {exc.strerror or exc}"))
            continue
        for entry in listed:
            rel = rel_dir + entry.name
            st = entry.stat(follow_symlinks=False)
            is_dir = stat.S_ISDIR(st.st_mode)
            if is_dropping(entry.name, is_dir):
                skipped["build or editor file"] += 1
                continue
            if not flt.selects(rel):
                skipped["excluded"] += 1
                continue
            if is_dir:
                stack.append((rel + "/", entry.path))
                continue
            found = _source_file(rel, entry.path, st, root_real)
            (problems if isinstance(found, Problem) else files).append(found)
    lookalikes = _lookalikes(files)
    bad = {p.rel for p in lookalikes}
    kept = sorted((f for f in files if f.rel not in bad), key=lambda f: f.rel)
    return SourceScan(tuple(kept), tuple(problems + lookalikes), dict(skipped))


def _listdir(path: str) -> list[os.DirEntry]:
    with os.scandir(path) as entries:
        return list(entries)


def _source_file(rel: str, path: str, st: os.stat_result, root_real: str) -> SourceFile | Problem:
    try:
        check_relative(rel)
    except UnsafeKey as exc:
        return Problem(rel, f"cannot be published as an S3 key: {exc}; rename it or --exclude it")
    if stat.S_ISLNK(st.st_mode):
        target = os.path.realpath(path)
        if not target.startswith(root_real + os.sep):
            return Problem(rel, f"is a symlink to {target}, outside the source folder; "
                                f"copy the file in or --exclude it")
        try:
            st = os.stat(target)
        except OSError:
            return Problem(rel, "is a broken symlink; remove it or --exclude it")
        if not stat.S_ISREG(st.st_mode):
            return Problem(rel, "is a symlink to a folder; only files are followed, so link the files "
                                "or --exclude it")
        path = target
    elif not stat.S_ISREG(st.st_mode):
        return Problem(rel, "is not a regular file (a pipe, socket or device); remove it or --exclude it")
    try:
        md5, etag, size, sha256 = hash_file(path)
    except OSError as exc:
        return Problem(rel, f"cannot be read: {exc.strerror or exc}")
    return SourceFile(rel, path, size, md5, etag, sha256)


def hash_file(path: str) -> tuple[str, str, int, str]:
    """The MD5, the ETag objsync's upload will get, the size and the SHA-256, from one read of the file."""
    sha256 = hashlib.sha256()
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        hasher = EtagHasher(size)
        read = 0
        while chunk := fh.read(_CHUNK):
            hasher.update(chunk)
            sha256.update(chunk)
            read += len(chunk)
    if read != size:
        raise OSError(f"changed while being read ({size} bytes, then {read})")
    return hasher.md5.hexdigest(), hasher.etag(), size, sha256.hexdigest()


def _lookalikes(files: list[SourceFile]) -> list[Problem]:
    """Names that differ only in Unicode normalization: pull would keep only one of them."""
    first: dict[str, str] = {}
    out = []
    for f in sorted(files, key=lambda f: f.rel):
        other = first.setdefault(nfc(f.rel), f.rel)
        if other != f.rel:
            out.append(Problem(f.rel, f"differs from {other!r} only in Unicode normalization; rename one"))
    return out


def compile_problems(files: Iterable[SourceFile]) -> list[Problem]:
    """A Problem for each `.py` file that does not compile, in path order."""
    sources = [f for f in files if f.rel.endswith(".py")]
    jobs = [(f.rel, f.path) for f in sources]
    if sum(f.size for f in sources) >= _PARALLEL_COMPILE_BYTES and (os.cpu_count() or 1) > 1:
        with ProcessPoolExecutor() as pool:
            found = list(pool.map(_compile_job, jobs, chunksize=max(1, len(jobs) // 64)))
    else:
        found = [_compile_job(job) for job in jobs]
    return sorted((p for p in found if p is not None), key=lambda p: p.rel)


def _compile_job(job: tuple[str, str]) -> Problem | None:
    rel, path = job
    try:
        with open(path, "rb") as fh:
            return compile_problem(fh.read(), rel)
    except OSError as exc:
        return Problem(rel, f"cannot be read: {exc.strerror or exc}")


def compile_problem(data: bytes, rel: str) -> Problem | None:
    """What py_compile would report for this source, without writing a .pyc: None when it compiles."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SyntaxWarnings (e.g. invalid escapes) do not block a push
        try:
            compile(data, rel, "exec", dont_inherit=True)
        except SyntaxError as exc:
            return Problem(rel, f"{exc.msg} (does not compile; fix it, or pass --no-compile-check)", exc.lineno)
        except ValueError as exc:  # null bytes, before Python 3.12
            return Problem(rel, f"{exc} (does not compile; fix it, or pass --no-compile-check)")
    return None

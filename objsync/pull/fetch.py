"""What a worker does with one task: check local bytes or download to a temp file, verify, rename."""

from __future__ import annotations

import errno
import functools
import hashlib
import os
import stat
from dataclasses import dataclass
from typing import Sequence

import xxhash

from objsync.model import Action, Fetch, FetchResult, Fsync, Job, Verify
from objsync.pull.config import WriteOptions
from objsync.pull.places import Places, UnsafePath, make_temp, replace, sync_filesystem, write_all
from objsync.s3.errors import describe_error
from objsync.s3.etag import KMS, is_md5_etag, multipart_etag, multipart_parts
from objsync.s3.records import Cancelled, ReadInfo, ReadRequest

_CHUNK = 1 << 20
_MIB = 1 << 20
# Part sizes used by common uploaders (boto3/aws-cli 8 MiB, s5cmd/rclone 5 MiB+, Go SDK 5 MiB...).
_PART_SIZES_MIB = (5, 8, 10, 15, 16, 25, 32, 50, 64, 100, 128, 256, 512)


class IntegrityError(Exception):
    """The bytes received are not the object that was listed."""


@dataclass(frozen=True, slots=True)
class Staged:
    """A verified download in its temp file, waiting for the batch's sync and its rename."""

    tmp_path: str
    name: str
    parent_fd: int
    result: FetchResult


def run_batch(reader, opts: WriteOptions, jobs: Sequence[Job], run_many, cancelled=None) -> list[FetchResult]:
    """Run a batch: downloads are staged in temp files, synced once, then renamed into place.

    `run_many(fn, items)` maps fn over items on threads: the checks of local files. Once
    `cancelled()` is true, downloads still running fail as stopped; what arrived complete is
    still committed.
    """
    dirs = Places(jobs)
    try:
        outcomes = _stage(reader, opts, [job.fetch for job in jobs], dirs, run_many, cancelled)
        staged = [o for o in outcomes if isinstance(o, Staged)]
        if staged and opts.fsync == Fsync.BATCH:
            sync_filesystem(dirs.any_fd())
        return [_commit(o) if isinstance(o, Staged) else o for o in outcomes]
    finally:
        dirs.close()


def _stage(reader, opts: WriteOptions, tasks, dirs: Places, run_many, cancelled) -> list["FetchResult | Staged"]:
    outcomes: list[FetchResult | Staged | None] = [None] * len(tasks)
    checks = [i for i, t in enumerate(tasks) if t.verify]  # a local file that is already right needs no GET
    for i, found in zip(checks, run_many(lambda i: _check_local(opts, tasks[i], dirs), checks)):
        outcomes[i] = found
    reads = [i for i in range(len(tasks)) if outcomes[i] is None]
    requests = [ReadRequest(tasks[i].key, tasks[i].etag, functools.partial(_Download, opts, tasks[i], dirs),
                            tasks[i].version_id) for i in reads]
    for i, read in zip(reads, reader.read_many(requests, cancelled)):
        if read.ok:
            outcomes[i] = read.sink.finish_or_fail(read.info)
        elif isinstance(read.error, Cancelled):
            outcomes[i] = _failed(tasks[i], "stopped before the download finished; the next pass fetches it")
        else:
            outcomes[i] = _failed(tasks[i], _describe(read.error, tasks[i]))
    return outcomes


def _check_local(opts: WriteOptions, task: Fetch, dirs: Places) -> "FetchResult | None":
    try:
        found = _verify_local(opts, task, dirs)
    except Exception as exc:
        return _failed(task, _describe(exc, task))
    return None if found is None else _result(task, Action.VERIFIED, *found)


def _commit(staged: Staged) -> FetchResult:
    try:
        replace(staged.tmp_path, staged.name, staged.parent_fd)
        return staged.result
    except OSError as exc:
        _unlink_quietly(staged.tmp_path)
        return _failed(staged.result, _describe(exc, staged.result))


def _describe(exc: Exception, task) -> str:
    if isinstance(exc, IntegrityError):
        return f"integrity check failed: {exc}; the old file was kept"
    if isinstance(exc, UnsafePath):
        return exc.strerror or str(exc)
    if isinstance(exc, OSError):
        return _describe_oserror(exc, task.rel)
    text = describe_error(exc)  # botocore and transport errors
    return _explain(text) if isinstance(task, Fetch) and task.md5 else text


def _explain(error: str) -> str:
    """Say what a failed read of an object that a manifest names means, and what to do."""
    gone = {"PreconditionFailed": "overwritten", "NoSuchKey": "deleted"}.get(error.partition(" ")[0])
    if gone:
        return (f"{error}: the object is no longer the one the manifest names ({gone} after the push); "
                f"push the repo again, or keep old versions readable with bucket versioning")
    return error


def _result(task: Fetch, action: str, digest: str, mtime_ns: int, nbytes: int = 0) -> FetchResult:
    return FetchResult(task.key, task.rel, task.etag, task.size, mtime_ns, digest, action, nbytes)


def _failed(task: "Fetch | FetchResult", error: str) -> FetchResult:
    return FetchResult(task.key, task.rel, task.etag, task.size, 0, "", Action.FAILED, 0, error)


def _verify_local(opts: WriteOptions, task: Fetch, dirs: Places) -> tuple[str, int] | None:
    """Hash the local file; return (xxh3, mtime_ns) when its bytes are the object's, else None."""
    parent_fd = dirs.parent_fd(task)
    name = dirs.name(task)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=parent_fd)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode) or before.st_size != task.size:
            return None
        digest = xxhash.xxh3_128()
        check = _EtagCheck(task)
        signed = hashlib.sha256() if task.sha256 else None
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            check.update(chunk)
            if signed is not None:
                signed.update(chunk)
        after = os.fstat(fd)
        if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
            return None  # changed while we read it
        matches = digest.hexdigest() == task.expect if task.verify == Verify.XXH3 else check.matches()
        if not matches or (signed is not None and signed.hexdigest() != task.sha256):
            return None
        if stat.S_IMODE(after.st_mode) != opts.file_mode:
            if after.st_nlink > 1:
                return None  # a chmod would reach the file's other names too: write our own copy
            os.fchmod(fd, opts.file_mode)
        return digest.hexdigest(), after.st_mtime_ns


class _Download:
    """One object arriving in a temp file: every chunk is written, hashed and counted as it comes."""

    def __init__(self, opts: WriteOptions, task: Fetch, dirs: Places) -> None:
        self.opts, self.task = opts, task
        self.parent_fd = dirs.parent_fd(task)
        self.name = dirs.name(task)
        # The temp file is made when the first bytes arrive, so requests go out without waiting
        # for file creation, which costs more than the request on some filesystems.
        self.fd, self.tmp_path = -1, ""
        self.digest = xxhash.xxh3_128()
        self.etag_is_md5 = is_md5_etag(task.etag)
        self.md5 = hashlib.md5(usedforsecurity=False) if self.etag_is_md5 or task.md5 else None
        self.sha256 = hashlib.sha256() if task.sha256 else None
        self.received = 0

    def write(self, chunk: bytes) -> None:
        """Write a chunk; an error here (a full disk) ends the read, which is not repeated."""
        if self.fd < 0:
            self.fd, self.tmp_path = make_temp(self.opts.tmp)
        write_all(self.fd, chunk)
        self.digest.update(chunk)
        if self.md5 is not None:
            self.md5.update(chunk)
        if self.sha256 is not None:
            self.sha256.update(chunk)
        self.received += len(chunk)

    def finish_or_fail(self, info: ReadInfo) -> "Staged | FetchResult":
        """Check what arrived against the listing; a staged file on success, a failed result otherwise."""
        try:
            return self._finish(info)
        except Exception as exc:
            self.discard()
            return _failed(self.task, _describe(exc, self.task))

    def _finish(self, info: ReadInfo) -> Staged:
        if self.fd < 0:  # an empty object: no bytes, no write
            self.fd, self.tmp_path = make_temp(self.opts.tmp)
        task, fd = self.task, self.fd
        if self.received != task.size:
            raise IntegrityError(f"received {self.received} bytes, the listing says {task.size}")
        if task.etag and info.etag and info.etag != task.etag:
            raise IntegrityError(f"the server sent ETag {info.etag}, the listing says {task.etag}")
        if self.etag_is_md5 and info.sse not in KMS and self.md5.hexdigest() != task.etag.lower():
            raise IntegrityError(f"MD5 {self.md5.hexdigest()} does not match the ETag {task.etag}")
        if task.md5 and self.md5.hexdigest() != task.md5:
            raise IntegrityError(f"MD5 {self.md5.hexdigest()} does not match the manifest's {task.md5}")
        if self.sha256 is not None and self.sha256.hexdigest() != task.sha256:
            raise IntegrityError(f"SHA-256 {self.sha256.hexdigest()} does not match the signed manifest's "
                                 f"{task.sha256}: the object is not the one that was signed")
        os.fchmod(fd, self.opts.file_mode)
        mtime_ns = _distinct_mtime(task.mtime_ns, task.size, self.parent_fd, self.name)
        os.utime(fd, ns=(mtime_ns, mtime_ns))
        if self.opts.fsync == Fsync.FILE:
            os.fsync(fd)
        st = os.fstat(fd)
        if st.st_size != task.size:  # what reached the disk, not just what was received
            raise IntegrityError(f"the temp file holds {st.st_size} bytes, expected {task.size}")
        os.close(fd)
        self.fd = -1
        return Staged(self.tmp_path, self.name, self.parent_fd,
                      _result(task, Action.FETCHED, self.digest.hexdigest(), st.st_mtime_ns, self.received))

    def discard(self) -> None:
        """Close and remove the temp file."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.tmp_path:
            _unlink_quietly(self.tmp_path)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _distinct_mtime(mtime_ns: int, size: int, parent_fd: int, name: str) -> int:
    """The mtime for a file about to replace `name`: its own, or one second later when the file it replaces
    has the same size and the same mtime in whole seconds.

    Python trusts a cached .pyc while its source keeps that size and whole-second mtime: new code of the
    same size, published within the same second, would otherwise run as the old code. This also covers a
    .pyc that a reader of the previous --atomic tree wrote into the new one just after the swap.
    """
    try:
        old = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except OSError:
        return mtime_ns
    if stat.S_ISREG(old.st_mode) and old.st_size == size and old.st_mtime_ns // 10**9 == mtime_ns // 10**9:
        return mtime_ns + 10**9
    return mtime_ns


def _describe_oserror(exc: OSError, rel: str) -> str:
    if exc.errno == errno.ENOSPC:
        return f"no space left on the device writing {rel!r}; free space, the old file was kept"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"permission denied writing {rel!r}: {exc.strerror}; check the folder's owner and mode"
    if exc.errno == errno.EROFS:
        return f"the destination is read-only, cannot write {rel!r}"
    return f"cannot write {rel!r}: {exc.strerror or exc}"


class _EtagCheck:
    """Recomputes an ETag from the bytes: a plain MD5, or a multipart ETag for likely part sizes."""

    def __init__(self, task: Fetch) -> None:
        self.etag = task.etag.lower()
        self.md5 = hashlib.md5(usedforsecurity=False) if task.verify == Verify.MD5 else None
        parts = multipart_parts(self.etag) if task.verify == Verify.MULTIPART else None
        self.parts = parts
        self.candidates = _part_sizes(task.size, parts) if parts else []
        self.state = [[hashlib.md5(usedforsecurity=False), 0, []] for _ in self.candidates]

    def update(self, chunk: bytes) -> None:
        if self.md5 is not None:
            self.md5.update(chunk)
        for size, st in zip(self.candidates, self.state):
            view = memoryview(chunk)
            while view:
                room = size - st[1]
                piece = view[:room]
                st[0].update(piece)
                st[1] += len(piece)
                view = view[len(piece):]
                if st[1] == size:
                    st[2].append(st[0].digest())
                    st[0], st[1] = hashlib.md5(usedforsecurity=False), 0

    def matches(self) -> bool:
        if self.md5 is not None:
            return self.md5.hexdigest() == self.etag
        return any(multipart_etag(st[2] + ([st[0].digest()] if st[1] else [])) == self.etag
                   for st in self.state)


def _part_sizes(size: int, parts: int) -> list[int]:
    """Part sizes that split `size` bytes into exactly `parts` parts, most likely first."""
    guesses = [mib * _MIB for mib in _PART_SIZES_MIB]
    exact = -(-size // parts)
    guesses += [-(-exact // _MIB) * _MIB, exact]
    seen: list[int] = []
    for g in guesses:
        if g > 0 and -(-size // g) == parts and g not in seen:
            seen.append(g)
    return seen[:6]

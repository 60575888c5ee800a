"""Repo versions as a pull reads them: which manifests a listing holds, whether one can be used, and what it names."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable, Mapping, Sequence

from objsync.layout import MANIFESTS, check_repo_name, history_key, pack_key
from objsync.manifest import TIME_FORMAT, Manifest, ManifestError
from objsync.model import Kind, Problem, RemoteObject
from objsync.pack import slots
from objsync.paths import STATE_DIR, conflicts, normalize_prefix
from objsync.s3.bucket import Bucket
from objsync.s3.errors import is_missing
from objsync.s3.etag import damage
from objsync.s3.records import ReadInfo
from objsync.signing import SignatureError, VerifyKey, verify

MAX_MANIFEST_BYTES = 128 << 20  # about 600,000 files; a larger document is refused, not read


class Refused(Exception):
    """A manifest that will not be used; the message says why."""


@dataclass(frozen=True, slots=True)
class Version:
    """The version of one repo that passes plan from: where it came from, and the manifest."""

    source: str  # the current manifest's ETag, or "pin:<id>" for a version read from history
    manifest: Manifest


def layout_problem(m: Manifest) -> str | None:
    """Why the manifest's paths cannot coexist in a folder (a file that is also a folder, look-alikes), if so."""
    found = conflicts(f.path for f in m.files)
    if not found:
        return None
    c = found[min(found)]
    if c.unicode:
        return f"{c.other!r} and {c.path!r} differ only in Unicode normalization"
    return f"{c.path!r} is both a file and a folder (another path is {c.other!r})"


def parse_manifest(body: bytes, repo: str, pinned: str | None = None, keys: Sequence[VerifyKey] = ()) -> Manifest:
    """Validate one downloaded manifest for `repo` (and the pinned id, and a signature by one of `keys`);
    raises Refused."""
    try:
        m = Manifest.from_json(body)
    except ManifestError as exc:
        raise Refused(str(exc)) from None
    if keys:
        check_signature(m, keys)
    if m.repo != repo:
        raise Refused(f"it names repo {m.repo!r}, not {repo!r}")
    if pinned is not None and m.id != pinned:
        raise Refused(f"it holds version {m.id}, not {pinned}")
    why = layout_problem(m)
    if why:
        raise Refused(why)
    return m


def read_manifest(bucket: Bucket, prefix: str, repo: str, obj: RemoteObject | None, pinned: str | None = None,
                  keys: Sequence[VerifyKey] = (), read: tuple[bytes, ReadInfo] | None = None) -> Manifest:
    """Read and validate the manifest `obj` of `repo` (or its pinned version from history), unless its bytes
    were `read` already; raises Refused, and OSError for bytes damaged on the way (to be read again)."""
    if pinned is not None:
        key, etag, size = history_key(prefix, repo, pinned), "", 0
    else:
        key, etag, size = obj.key, obj.etag, obj.size
        if size > MAX_MANIFEST_BYTES:
            raise Refused(f"it is {size:,} bytes, over the limit of {MAX_MANIFEST_BYTES:,}")
    if read is None:
        chunks: list[bytes] = []
        try:
            info = bucket.read(key, etag, size, chunks.append)
        except Exception as exc:
            if pinned is not None and is_missing(exc):
                raise Refused(f"version {pinned} is not in its history ({key} does not exist); choose one of the "
                              f"ids under {prefix}{STATE_DIR}/history/{repo}/") from None
            raise
        read = b"".join(chunks), info
    body, info = read
    # A refusal is remembered until the manifest changes: bytes damaged on the way must be read again instead.
    damaged = damage(body, info.etag or etag, info.sse)
    if damaged:
        raise OSError(f"{key} arrived damaged ({damaged}); it is read again at the next pass")
    return parse_manifest(body, repo, pinned, keys)


def check_signature(m: Manifest, keys: Sequence[VerifyKey]) -> None:
    """Raise Refused unless one of `keys` signed the manifest."""
    if m.signature is None:
        raise Refused(f"it is not signed, and this pull takes only versions signed by key "
                      f"{' or '.join(k.key_id for k in keys)}; publish it with `objsync push --sign-key`")
    try:
        verify(m.statement(), m.signature.key_id, m.signature.ed25519, keys)
    except SignatureError as exc:
        raise Refused(str(exc)) from None


def manifest_names(listing: Iterable[RemoteObject], folder: str) -> tuple[dict[str, RemoteObject], list[Problem]]:
    """Repo name -> manifest object for each `<repo>.json` under `folder`; anything else is a problem."""
    found: dict[str, RemoteObject] = {}
    problems = []
    for obj in listing:
        name = obj.key[len(folder):] if obj.key.startswith(folder) else ""
        repo = name[:-5] if name.endswith(".json") else ""
        try:
            check_repo_name(repo)
        except ValueError:
            problems.append(Problem(obj.key, f"not a manifest: {MANIFESTS} holds only <repo>.json files with a "
                                             f"valid repo name; ignored", Kind.REJECTED))
            continue
        found[repo] = obj
    return found, problems


def manifest_listing(prefix: str, versions: Mapping[str, Version]) -> list[RemoteObject]:
    """The objects the manifests name, as a listing would show them (mtime: the manifest's time).

    Each carries the manifest's VersionId and MD5, so that exactly the published bytes are read.
    """
    prefix = normalize_prefix(prefix)
    out: list[RemoteObject] = []
    for repo, version in sorted(versions.items()):
        m = version.manifest
        mtime_ns = int(datetime.strptime(m.created, TIME_FORMAT).replace(tzinfo=timezone.utc).timestamp()) * 10**9
        folder = f"{prefix}{repo}/"
        packed = {} if m.pack is None else slots(pack_key(prefix, repo, m.id), m.pack, [(f.path, f.size) for f in m.files])
        out += [RemoteObject(folder + f.path, f.etag, f.size, mtime_ns, f.version_id, f.md5, f.sha256 or "",
                             packed.get(f.path)) for f in m.files]
    return out

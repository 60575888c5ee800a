"""The manifest: the record of one published version of a repo, written last as a push's commit point.

A manifest is a UTF-8 JSON object with sorted keys (schema 3; schema 2 has no "signature" nor "sha256",
schema 1 no "source_url" either):

    {
      "schema": 3,
      "id": "3f0c9a1b2d4e5f60",          # content id, see content_id()
      "repo": "team-dags",
      "commit": "9fceb02d0ae598e95dc970b74767f19372d61af8",   # or null
      "created": "2024-05-01T12:00:00Z",  # UTC
      "objsync_version": "0.1.0",
      "promoted_from": null,              # or {"env", "url", "manifest_id"}
      "source_url": "https://github.com/acme/team-dags",  # the repo's web page, where CI said it
      "signature": {"key_id": "…", "ed25519": "…"},      # or null; see statement()
      "files": [                          # sorted by path, paths unique
        {"path": "dags/a.py", "size": 120, "etag": "…", "md5": "…", "sha256": "…", "version_id": null}
      ]
    }

`path` is relative to the repo's folder `<prefix>/<repo>/`. `etag` is the object's ETag without
quotes, `md5` the MD5 of its bytes (they differ for multipart uploads), `version_id` is set when the
bucket is versioned, `sha256` the SHA-256 of its bytes. A manifest is written in the oldest schema that
holds its fields (schema 3 only when signed), so that older objsync releases still read unsigned ones. Reading is strict: an unknown or missing field, a duplicate key, an unsafe path or
a wrong id is an error. Adding a field means a new schema number.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from objsync.layout import check_env_name, check_manifest_id, check_repo_name
from objsync.paths import UnsafeKey, check_relative
from objsync.s3.config import Location

SCHEMA = 3  # the newest schema this objsync reads and writes
SCHEMAS = (1, 2, 3)
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_MD5 = re.compile(r"[0-9a-f]{32}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_KEY_ID = re.compile(r"[0-9a-f]{16}")
_ED25519 = re.compile(r"[A-Za-z0-9+/]{86}==")
_COMMIT = re.compile(r"[0-9a-f]{7,64}")
_TOKEN = re.compile(r"[\x21-\x7e]{1,1024}")  # printable ASCII without spaces
_FILE_FIELDS = ("path", "size", "etag", "md5", "version_id")
_FILE_FIELDS_V3 = _FILE_FIELDS + ("sha256",)
_ORIGIN_FIELDS = ("env", "url", "manifest_id")
_SIGNATURE_FIELDS = ("key_id", "ed25519")
_FIELDS_V1 = ("schema", "id", "repo", "commit", "created", "objsync_version", "promoted_from", "files")
_FIELDS = {1: _FIELDS_V1, 2: _FIELDS_V1 + ("source_url",), 3: _FIELDS_V1 + ("source_url", "signature")}
_URL = re.compile(r"https?://[\x21-\x7e]{1,1000}")


class ManifestError(ValueError):
    """A manifest that is not valid; the message names the field and what is wrong with it."""


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One published file: path relative to the repo folder, size, ETag, MD5 and version id."""

    path: str
    size: int
    etag: str
    md5: str
    version_id: str | None = None
    sha256: str | None = None  # schema 3


@dataclass(frozen=True, slots=True)
class Signature:
    """An Ed25519 signature of a manifest's statement: the signing key's id and the base64 signature."""

    key_id: str
    ed25519: str


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a promoted manifest came from: environment name, its s3:// URL and its manifest id."""

    env: str
    url: str
    manifest_id: str


@dataclass(frozen=True)
class Manifest:
    """One published version of a repo; invalid contents raise ManifestError at construction."""

    repo: str
    files: tuple[FileEntry, ...]
    commit: str | None
    created: str
    objsync_version: str
    promoted_from: Origin | None = None
    source_url: str | None = None  # the repo's web page (GitHub, GitLab...), to link a version to its commit
    signature: Signature | None = None
    schema: int | None = None  # None: the oldest schema that holds these fields
    id: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        if self.schema is None:
            signed = self.signature is not None or any(f.sha256 is not None for f in self.files)
            object.__setattr__(self, "schema", 3 if signed else 1 if self.source_url is None else 2)
        object.__setattr__(self, "files", tuple(sorted(self.files, key=lambda f: f.path)))
        _validate(self)
        object.__setattr__(self, "id", content_id(self.files))

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def by_path(self) -> dict[str, FileEntry]:
        return {f.path: f for f in self.files}

    def commit_url(self) -> str | None:
        """The web page of this version's commit, when the push recorded both."""
        return commit_url(self.source_url, self.commit) if self.source_url and self.commit else None

    def statement(self) -> bytes:
        """The bytes a signature covers: repo, commit, source URL and each file's path, size, ETag, MD5, SHA-256.

        Not covered: when and by which release it was written, where it was promoted from, and version
        ids, so that a rollback keeps the signature and a promotion keeps it when the ETags stay.
        """
        return json.dumps({"objsync-signed-manifest": 1, "repo": self.repo, "commit": self.commit,
                           "source_url": self.source_url,
                           "files": [[f.path, f.size, f.etag, f.md5, f.sha256] for f in self.files]},
                          sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    def signed(self, signature: Signature | None) -> "Manifest":
        """The same manifest with `signature` (None: unsigned)."""
        return Manifest(self.repo, self.files, self.commit, self.created, self.objsync_version, self.promoted_from,
                        self.source_url, signature, self.schema if signature is None else None)

    def as_dict(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"source_url": self.source_url} if self.schema >= 2 else {}
        fields = _FILE_FIELDS_V3 if self.schema >= 3 else _FILE_FIELDS
        if self.schema >= 3:
            sig = self.signature
            extra["signature"] = None if sig is None else {"key_id": sig.key_id, "ed25519": sig.ed25519}
        return extra | {
            "schema": self.schema, "id": self.id, "repo": self.repo, "commit": self.commit,
            "created": self.created, "objsync_version": self.objsync_version,
            "promoted_from": None if self.promoted_from is None else {
                k: getattr(self.promoted_from, k) for k in _ORIGIN_FIELDS},
            "files": [{k: getattr(f, k) for k in fields} for f in self.files],
        }

    def to_json(self) -> bytes:
        return (json.dumps(self.as_dict(), sort_keys=True, ensure_ascii=False, indent=1) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> "Manifest":
        """Parse and validate a manifest document; raises ManifestError."""
        try:
            doc = json.loads(data, object_pairs_hook=_no_duplicates)
        except ManifestError:
            raise
        except (ValueError, UnicodeDecodeError) as exc:
            raise ManifestError(f"not a JSON document: {exc}") from None
        if not isinstance(doc, dict):
            raise ManifestError("manifest must be a JSON object")
        schema = doc.get("schema")
        if type(schema) is not int or schema not in SCHEMAS:
            raise ManifestError(f"schema {schema!r} is not supported (this objsync reads "
                                f"{', '.join(map(str, SCHEMAS))}); upgrade objsync to read it")
        _exact_keys(doc, _FIELDS[schema], "manifest")
        files = doc["files"]
        if not isinstance(files, list):
            raise ManifestError("'files' must be a list")
        entries = []
        for i, item in enumerate(files):
            _exact_keys(item, _FILE_FIELDS_V3 if schema >= 3 else _FILE_FIELDS, f"files[{i}]")
            entries.append(FileEntry(**item))
        paths = [e.path for e in entries]
        if any(not isinstance(p, str) for p in paths) or paths != sorted(paths):
            raise ManifestError("'files' must be sorted by path")
        origin = doc["promoted_from"]
        if origin is not None:
            _exact_keys(origin, _ORIGIN_FIELDS, "promoted_from")
            origin = Origin(**origin)
        signature = doc.get("signature")
        if signature is not None:
            _exact_keys(signature, _SIGNATURE_FIELDS, "signature")
            signature = Signature(**signature)
        manifest = cls(repo=doc["repo"], files=tuple(entries), commit=doc["commit"],
                       created=doc["created"], objsync_version=doc["objsync_version"],
                       promoted_from=origin, source_url=doc.get("source_url"), signature=signature, schema=schema)
        if doc["id"] != manifest.id:
            raise ManifestError(f"id {doc['id']!r} does not match the file list (expected {manifest.id!r}); "
                                f"the manifest was altered or damaged")
        return manifest


def commit_url(source_url: str, commit: str) -> str:
    """A commit's page on the repo's host: GitLab's `/-/commit/`, Bitbucket's `/commits/`, else GitHub's `/commit/`."""
    base = source_url.rstrip("/")
    host = base.split("/")[2].lower() if base.count("/") >= 2 else ""
    if "gitlab" in host:
        return f"{base}/-/commit/{commit}"
    if "bitbucket" in host:
        return f"{base}/commits/{commit}"
    return f"{base}/commit/{commit}"


def content_id(files: tuple[FileEntry, ...]) -> str:
    """First 16 hex digits of the SHA-256 of the sorted (path, size, md5) list: same bytes, same id."""
    canonical = json.dumps([[f.path, f.size, f.md5] for f in sorted(files, key=lambda f: f.path)],
                           separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def now() -> str:
    """The current UTC time in the manifest's format."""
    return datetime.now(timezone.utc).strftime(TIME_FORMAT)


def _validate(m: Manifest) -> None:
    if type(m.schema) is not int or m.schema not in SCHEMAS:
        raise ManifestError(f"schema must be one of {', '.join(map(str, SCHEMAS))}")
    if m.source_url is not None:
        if m.schema < 2:
            raise ManifestError("source_url needs schema 2")
        if not (isinstance(m.source_url, str) and _URL.fullmatch(m.source_url)):
            raise ManifestError(f"source_url {m.source_url!r} must be null or an http(s) URL without spaces")
    if m.schema < 3 and (m.signature is not None or any(f.sha256 is not None for f in m.files)):
        raise ManifestError("a signature or SHA-256s need schema 3")
    if m.signature is not None:
        s = m.signature
        if not (isinstance(s, Signature) and isinstance(s.key_id, str) and _KEY_ID.fullmatch(s.key_id)
                and isinstance(s.ed25519, str) and _ED25519.fullmatch(s.ed25519)):
            raise ManifestError("signature must be null or a key_id of 16 hex digits and a base64 Ed25519 signature")
    _check(m.repo, check_repo_name, "repo")
    if m.commit is not None and not (isinstance(m.commit, str) and _COMMIT.fullmatch(m.commit)):
        raise ManifestError(f"commit {m.commit!r} must be null or 7 to 64 lowercase hex digits")
    try:
        datetime.strptime(m.created, TIME_FORMAT)
    except (TypeError, ValueError):
        raise ManifestError(f"created {m.created!r} must be a UTC time such as 2024-05-01T12:00:00Z") from None
    if not (isinstance(m.objsync_version, str) and _TOKEN.fullmatch(m.objsync_version)):
        raise ManifestError(f"objsync_version {m.objsync_version!r} must be a non-empty word")
    if m.promoted_from is not None:
        o = m.promoted_from
        if not isinstance(o, Origin):
            raise ManifestError("promoted_from must be null or an origin record")
        _check(o.env, check_env_name, "promoted_from.env")
        _check(o.url, Location.parse, "promoted_from.url")
        _check(o.manifest_id, check_manifest_id, "promoted_from.manifest_id")
    seen: set[str] = set()
    for f in m.files:
        _check_file(f)
        if m.schema >= 3 and not (isinstance(f.sha256, str) and _SHA256.fullmatch(f.sha256)):
            raise ManifestError(f"{f.path}: sha256 {f.sha256!r} must be 64 lowercase hex digits")
        if f.path in seen:
            raise ManifestError(f"path {f.path!r} is listed twice")
        seen.add(f.path)


def _check_file(f: FileEntry) -> None:
    if not isinstance(f, FileEntry):
        raise ManifestError("files must be file entries")
    if not isinstance(f.path, str):
        raise ManifestError(f"path {f.path!r} must be a string")
    try:
        check_relative(f.path)
    except UnsafeKey as exc:
        raise ManifestError(f"path {f.path!r} is unsafe: {exc}") from None
    if type(f.size) is not int or f.size < 0:
        raise ManifestError(f"{f.path}: size {f.size!r} must be a whole number of bytes, 0 or more")
    if not (isinstance(f.md5, str) and _MD5.fullmatch(f.md5)):
        raise ManifestError(f"{f.path}: md5 {f.md5!r} must be 32 lowercase hex digits")
    if not (isinstance(f.etag, str) and _TOKEN.fullmatch(f.etag)) or '"' in f.etag:
        raise ManifestError(f"{f.path}: etag {f.etag!r} must be a non-empty word without quotes")
    if f.version_id is not None and not (isinstance(f.version_id, str) and _TOKEN.fullmatch(f.version_id)):
        raise ManifestError(f"{f.path}: version_id {f.version_id!r} must be null or a non-empty word")


def _check(value: Any, check, what: str) -> None:
    try:
        check(value)
    except (ValueError, TypeError) as exc:
        raise ManifestError(f"{what}: {exc}") from None


def _exact_keys(doc: Any, fields: tuple[str, ...], what: str) -> None:
    if not isinstance(doc, dict):
        raise ManifestError(f"{what} must be a JSON object")
    missing = [k for k in fields if k not in doc]
    extra = sorted(k for k in doc if k not in fields)
    if missing or extra:
        raise ManifestError(f"{what}: " + "; ".join(
            part for part in (missing and f"missing {', '.join(missing)}",
                              extra and f"unknown {', '.join(extra)}") if part))


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ManifestError(f"key {key!r} appears twice")
        out[key] = value
    return out

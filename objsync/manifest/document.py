"""The manifest record: reading and writing its JSON document, its content id and the statement a signature covers."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from objsync.manifest.checks import (FIELDS, FILE_FIELDS, FILE_FIELDS_V3, ORIGIN_FIELDS, PACK_FIELDS, SCHEMAS,
                                     SIGNATURE_FIELDS, TIME_FORMAT, exact_keys, no_duplicates, validate)
from objsync.manifest.records import FileEntry, ManifestError, Origin, Signature
from objsync.pack import Pack, Segment


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
    pack: Pack | None = None
    schema: int | None = None  # None: the oldest schema that holds these fields
    id: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        if self.schema is None:
            signed = self.signature is not None or any(f.sha256 is not None for f in self.files)
            object.__setattr__(self, "schema", 4 if self.pack is not None else 3 if signed
                               else 1 if self.source_url is None else 2)
        object.__setattr__(self, "files", tuple(sorted(self.files, key=lambda f: f.path)))
        validate(self)
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
                        self.source_url, signature, self.pack, self.schema if signature is None else None)

    def packed(self, pack: Pack | None) -> "Manifest":
        """The same manifest with `pack` (None: without one)."""
        return Manifest(self.repo, self.files, self.commit, self.created, self.objsync_version, self.promoted_from,
                        self.source_url, self.signature, pack)

    def as_dict(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"source_url": self.source_url} if self.schema >= 2 else {}
        fields = FILE_FIELDS_V3 if self.schema >= 3 else FILE_FIELDS
        if self.schema >= 3:
            sig = self.signature
            extra["signature"] = None if sig is None else {"key_id": sig.key_id, "ed25519": sig.ed25519}
        if self.schema >= 4:
            extra["pack"] = None if self.pack is None else pack_dict(self.pack)
        return extra | {
            "schema": self.schema, "id": self.id, "repo": self.repo, "commit": self.commit,
            "created": self.created, "objsync_version": self.objsync_version,
            "promoted_from": None if self.promoted_from is None else {
                k: getattr(self.promoted_from, k) for k in ORIGIN_FIELDS},
            "files": [{k: getattr(f, k) for k in fields} for f in self.files],
        }

    def to_json(self) -> bytes:
        return (json.dumps(self.as_dict(), sort_keys=True, ensure_ascii=False, indent=1) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> "Manifest":
        """Parse and validate a manifest document; raises ManifestError."""
        try:
            doc = json.loads(data, object_pairs_hook=no_duplicates)
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
        exact_keys(doc, FIELDS[schema], "manifest")
        files = doc["files"]
        if not isinstance(files, list):
            raise ManifestError("'files' must be a list")
        entries = []
        for i, item in enumerate(files):
            exact_keys(item, FILE_FIELDS_V3 if schema >= 3 else FILE_FIELDS, f"files[{i}]")
            entries.append(FileEntry(**item))
        paths = [e.path for e in entries]
        if any(not isinstance(p, str) for p in paths) or paths != sorted(paths):
            raise ManifestError("'files' must be sorted by path")
        origin = doc["promoted_from"]
        if origin is not None:
            exact_keys(origin, ORIGIN_FIELDS, "promoted_from")
            origin = Origin(**origin)
        signature = doc.get("signature")
        if signature is not None:
            exact_keys(signature, SIGNATURE_FIELDS, "signature")
            signature = Signature(**signature)
        pack = doc.get("pack")
        if pack is not None:
            exact_keys(pack, PACK_FIELDS, "pack")
            segments = pack["segments"]
            if not (isinstance(segments, list) and all(isinstance(s, list) and len(s) == 3 for s in segments)):
                raise ManifestError("pack segments must be a list of [offset, length, files]")
            pack = Pack(pack["etag"], pack["size"], tuple(Segment(*s) for s in segments), pack["max_file"],
                        pack["version_id"], pack["format"])
        manifest = cls(repo=doc["repo"], files=tuple(entries), commit=doc["commit"],
                       created=doc["created"], objsync_version=doc["objsync_version"],
                       promoted_from=origin, source_url=doc.get("source_url"), signature=signature, pack=pack,
                       schema=schema)
        if doc["id"] != manifest.id:
            raise ManifestError(f"id {doc['id']!r} does not match the file list (expected {manifest.id!r}); "
                                f"the manifest was altered or damaged")
        return manifest


def pack_dict(pack: Pack) -> dict[str, Any]:
    """A pack as the manifest's JSON holds it."""
    return {"etag": pack.etag, "size": pack.size, "version_id": pack.version_id, "max_file": pack.max_file,
            "format": pack.format, "segments": [[s.offset, s.length, s.files] for s in pack.segments]}


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

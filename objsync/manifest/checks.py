"""The rules a manifest's fields follow, checked at construction and when a document is read."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from objsync.layout import check_env_name, check_manifest_id, check_repo_name
from objsync.manifest.records import FileEntry, ManifestError, Origin, Signature
from objsync.pack import Pack, PackError, check_pack, slots
from objsync.paths import UnsafeKey, check_relative
from objsync.s3.config import Location

SCHEMA = 4  # the newest schema this objsync reads and writes
SCHEMAS = (1, 2, 3, 4)
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_MD5 = re.compile(r"[0-9a-f]{32}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_KEY_ID = re.compile(r"[0-9a-f]{16}")
_ED25519 = re.compile(r"[A-Za-z0-9+/]{86}==")
_COMMIT = re.compile(r"[0-9a-f]{7,64}")
_TOKEN = re.compile(r"[\x21-\x7e]{1,1024}")  # printable ASCII without spaces
FILE_FIELDS = ("path", "size", "etag", "md5", "version_id")
FILE_FIELDS_V3 = FILE_FIELDS + ("sha256",)
ORIGIN_FIELDS = ("env", "url", "manifest_id")
SIGNATURE_FIELDS = ("key_id", "ed25519")
FIELDS_V1 = ("schema", "id", "repo", "commit", "created", "objsync_version", "promoted_from", "files")
PACK_FIELDS = ("etag", "size", "version_id", "max_file", "format", "segments")
FIELDS = {1: FIELDS_V1, 2: FIELDS_V1 + ("source_url",), 3: FIELDS_V1 + ("source_url", "signature"),
          4: FIELDS_V1 + ("source_url", "signature", "pack")}
_URL = re.compile(r"https?://[\x21-\x7e]{1,1000}")


def validate(m) -> None:
    """Raise ManifestError naming the first field of the Manifest `m` that is not valid."""
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
    check(m.repo, check_repo_name, "repo")
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
        check(o.env, check_env_name, "promoted_from.env")
        check(o.url, Location.parse, "promoted_from.url")
        check(o.manifest_id, check_manifest_id, "promoted_from.manifest_id")
    seen: set[str] = set()
    for f in m.files:
        check_file(f)
        if m.schema >= 3 and not (isinstance(f.sha256, str) and _SHA256.fullmatch(f.sha256)):
            raise ManifestError(f"{f.path}: sha256 {f.sha256!r} must be 64 lowercase hex digits")
        if f.path in seen:
            raise ManifestError(f"path {f.path!r} is listed twice")
        seen.add(f.path)
    if m.pack is not None:
        check_pack_of(m)


def check_pack_of(m) -> None:
    p = m.pack
    if m.schema < 4 or not isinstance(p, Pack):
        raise ManifestError("a pack needs schema 4")
    if not (isinstance(p.etag, str) and _TOKEN.fullmatch(p.etag)) or '"' in p.etag:
        raise ManifestError(f"pack etag {p.etag!r} must be a non-empty word without quotes")
    if type(p.size) is not int or type(p.max_file) is not int or p.max_file < 0:
        raise ManifestError("pack size and max_file must be whole numbers")
    if p.version_id is not None and not (isinstance(p.version_id, str) and _TOKEN.fullmatch(p.version_id)):
        raise ManifestError(f"pack version_id {p.version_id!r} must be null or a non-empty word")
    check_pack(p, ManifestError)
    try:
        slots("", p, [(f.path, f.size) for f in m.files])
    except PackError as exc:
        raise ManifestError(f"pack: {exc}") from None


def check_file(f: FileEntry) -> None:
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


def check(value: Any, check, what: str) -> None:
    try:
        check(value)
    except (ValueError, TypeError) as exc:
        raise ManifestError(f"{what}: {exc}") from None


def exact_keys(doc: Any, fields: tuple[str, ...], what: str) -> None:
    if not isinstance(doc, dict):
        raise ManifestError(f"{what} must be a JSON object")
    missing = [k for k in fields if k not in doc]
    extra = sorted(k for k in doc if k not in fields)
    if missing or extra:
        raise ManifestError(f"{what}: " + "; ".join(
            part for part in (missing and f"missing {', '.join(missing)}",
                              extra and f"unknown {', '.join(extra)}") if part))


def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ManifestError(f"key {key!r} appears twice")
        out[key] = value
    return out

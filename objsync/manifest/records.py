"""The small records of a manifest: a published file, a signature, the origin of a promotion, and the error."""

from __future__ import annotations

from dataclasses import dataclass


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

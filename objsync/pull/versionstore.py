"""Every version of one repo kept apart on disk, as `versions_dir/<manifest id>` (the Airflow bundle's storage).

`refresh` costs one request when nothing changed: a conditional GET of the repo's current
manifest. A new version is built beside the others from the closest version already on disk;
an older one (a pinned run, or one that cleanup removed) is rebuilt from the manifest history.
The store keeps a copy of each version's manifest and the id of the current one under
`base_dir/objsync/`, so that every process on the host sees the same versions.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from objsync.layout import check_manifest_id, history_key, manifest_key
from objsync.manifest import Manifest, ManifestError
from objsync.pull.versions import Refused, Version, parse_manifest
from objsync.pull.versiontree import Base, VersionError, build_version
from objsync.s3.bucket import Bucket
from objsync.s3.config import Location, RemoteConfig
from objsync.s3.errors import describe_error, is_missing

log = logging.getLogger("objsync.versions")


def current_version(base_dir: Path) -> str | None:
    """The id of the newest version refreshed on this host, if any."""
    try:
        return check_manifest_id((Path(base_dir) / "objsync" / "current").read_text().strip())
    except (OSError, ValueError):
        return None


class VersionStore:
    """The versions of `repo` under `location` on this host; not safe for two writers: hold a lock around calls."""

    def __init__(self, bucket: Bucket, remote: RemoteConfig, location: Location, repo: str, base_dir: Path,
                 versions_dir: Path) -> None:
        self.bucket, self.remote, self.location, self.repo = bucket, remote, location, repo
        self.versions_dir = Path(versions_dir)
        self.meta = Path(base_dir) / "objsync"
        self.etag = ""  # of the current manifest last read by this process

    # -- what is on disk -------------------------------------------------------------------------

    def current(self) -> str | None:
        """The id of the newest version refreshed on this host, if any."""
        return current_version(self.meta.parent)

    def path(self, mid: str) -> Path:
        return self.versions_dir / mid

    def manifest(self, mid: str) -> Manifest | None:
        """The manifest of a version this host has seen, else the one in the bucket's history; None if neither."""
        try:
            return parse_manifest((self.meta / "manifests" / f"{check_manifest_id(mid)}.json").read_bytes(),
                                  self.repo, mid)
        except (OSError, Refused):
            pass
        try:
            return self._history(mid)
        except VersionError:
            return None

    # -- getting versions ------------------------------------------------------------------------

    def refresh(self) -> str:
        """Make the repo's current version present and current here; its id. VersionError leaves the old one."""
        key = manifest_key(self.location.prefix, self.repo)
        try:
            got = self.bucket.read_if_changed(key, self.etag)
        except Exception as exc:
            raise VersionError(self._keeps(f"cannot read its manifest {self._url(key)}: {describe_error(exc)}")) from None
        if got is None:
            mid = self.current()
            if mid is not None and self.path(mid).is_dir():
                return mid
            got = self.bucket.read_if_changed(key, "")  # the version on disk went away: read the manifest again
        body, etag = got
        try:
            m = parse_manifest(body, self.repo)
        except Refused as exc:
            raise VersionError(self._keeps(f"its manifest {self._url(key)} was refused: {exc}")) from None
        self.ensure(m.id, Version(etag, m))
        self._write(self.meta / "current", m.id.encode())
        self.etag = etag
        return m.id

    def ensure(self, mid: str, version: Version | None = None) -> Path:
        """The folder of version `mid`, built first if it is not on this host (from the history, unless given)."""
        target = self.path(check_manifest_id(mid))
        if target.is_dir():
            return target
        if version is None:
            version = Version(f"pin:{mid}", self._history(mid))
        self._write(self.meta / "manifests" / f"{mid}.json", version.manifest.to_json())
        base = self._closest(version.manifest)
        report = build_version(self.remote, self.location, self.repo, version, self.versions_dir,
                               self.meta / "tmp", base)
        log.info("built version %s of repo %r: %d files downloaded (%d bytes), %d linked from %s",
                 mid, self.repo, report.fetched, report.bytes, len(version.manifest.files) - report.fetched,
                 base.manifest.id if base else "no earlier version",
                 extra={"repo": self.repo, "version": mid, "fetched": report.fetched})
        return target

    def _closest(self, m: Manifest) -> Base | None:
        """The version on disk that shares the most files (same path and ETag) with `m`."""
        wanted = {(f.path, f.etag) for f in m.files}
        best, score = None, 0
        try:
            names = os.listdir(self.versions_dir)
        except FileNotFoundError:
            return None
        for name in names:
            if name.startswith(".") or name == m.id or not self.path(name).is_dir():
                continue
            other = self.manifest(name) if (self.meta / "manifests" / f"{name}.json").exists() else None
            if other is None:
                continue
            shared = len(wanted & {(f.path, f.etag) for f in other.files})
            if shared > score:
                best, score = Base(str(self.path(name)), other), shared
        return best

    def _history(self, mid: str) -> Manifest:
        key = history_key(self.location.prefix, self.repo, mid)
        chunks: list[bytes] = []
        try:
            self.bucket.read(key, "", 0, chunks.append)
        except Exception as exc:
            if is_missing(exc):
                raise VersionError(f"version {mid} of repo {self.repo!r} is not in its history ({self._url(key)} "
                                   f"does not exist); keep history manifests for as long as runs may be retried") from None
            raise VersionError(f"cannot read version {mid} of repo {self.repo!r}: {describe_error(exc)}") from None
        try:
            return parse_manifest(b"".join(chunks), self.repo, mid)
        except (Refused, ManifestError) as exc:
            raise VersionError(f"version {mid} of repo {self.repo!r} in {self._url(key)} was refused: {exc}") from None

    def _keeps(self, why: str) -> str:
        mid = self.current()
        return f"repo {self.repo!r}: {why}; " + (f"version {mid} stays current" if mid else "no version is on this host yet")

    def _url(self, key: str) -> str:
        return f"s3://{self.location.bucket}/{key}"

    def _write(self, path: Path, data: bytes) -> None:
        """Replace a small file whole, so another process reads the old bytes or the new ones."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}")
        tmp.write_bytes(data)
        os.replace(tmp, path)

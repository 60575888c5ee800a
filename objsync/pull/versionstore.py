"""Every version of one repo kept apart on disk, as `versions_dir/<manifest id>` (the Airflow bundle's storage).

`refresh` costs one request when nothing changed: a conditional GET of the repo's current
manifest, with the ETag that every process on the host shares. A new version is built beside the
others from the closest version already on disk; an older one (a pinned run, or one that cleanup
removed) is rebuilt from the manifest history. The store keeps a copy of each version's manifest
and the current version's id and ETag under `base_dir/objsync/`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

from objsync.layout import check_manifest_id, history_key, manifest_key
from objsync.manifest import Manifest, ManifestError
from objsync.pull.store import remove_tree
from objsync.pull.versions import Refused, Version, check_signature, parse_manifest
from objsync.pull.versiontree import STAGING, Base, VersionError, build_version
from objsync.s3.bucket import Bucket
from objsync.s3.config import Location, RemoteConfig
from objsync.s3.errors import describe_error, is_missing
from objsync.signing import VerifyKey

log = logging.getLogger("objsync.versions")


def current_version(base_dir: Path) -> str | None:
    """The id of the newest version refreshed on this host, if any."""
    return _read_current(Path(base_dir) / "objsync" / "current")[0]


def stored_manifest(base_dir: Path, repo: str, mid: str) -> Manifest | None:
    """The copy of a version's manifest kept on this host, if any (no request)."""
    try:
        return parse_manifest((Path(base_dir) / "objsync" / "manifests" / f"{check_manifest_id(mid)}.json").read_bytes(),
                              repo, mid)
    except (OSError, ValueError, Refused):
        return None


def _read_current(path: Path) -> tuple[str | None, str]:
    """The current version's id and its manifest's ETag, from `path` ("<id> <etag>")."""
    try:
        mid, _, etag = path.read_text().strip().partition(" ")
        return check_manifest_id(mid), etag
    except (OSError, ValueError):
        return None, ""


class VersionStore:
    """The versions of `repo` under `location` on this host.

    Two processes may build one version at once (each renames its own staging folder); `tidy` needs a lock.
    """

    def __init__(self, bucket: Bucket, remote: RemoteConfig, location: Location, repo: str, base_dir: Path,
                 versions_dir: Path, keys: Sequence[VerifyKey] = ()) -> None:
        self.bucket, self.remote, self.location, self.repo = bucket, remote, location, repo
        self.keys = tuple(keys)  # given: only versions signed by one of them are built or used
        self.versions_dir = Path(versions_dir)
        self.meta = Path(base_dir) / "objsync"

    # -- what is on disk -------------------------------------------------------------------------

    def current(self) -> str | None:
        """The id of the newest version refreshed on this host, if any."""
        return _read_current(self.meta / "current")[0]

    def path(self, mid: str) -> Path:
        return self.versions_dir / mid

    def manifest(self, mid: str) -> Manifest | None:
        """The manifest of a version this host has seen, else the one in the bucket's history; None if neither."""
        return self.local_manifest(mid) or self._or_none(mid)

    def local_manifest(self, mid: str) -> Manifest | None:
        """The copy of a version's manifest kept on this host, if any (no request)."""
        return stored_manifest(self.meta.parent, self.repo, mid)

    # -- getting versions ------------------------------------------------------------------------

    def refresh(self) -> str:
        """Make the repo's current version present and current here; its id. VersionError leaves the old one."""
        key = manifest_key(self.location.prefix, self.repo)
        mid, etag = _read_current(self.meta / "current")
        if mid is None or not self.path(mid).is_dir() or (self.keys and not self._signed_here(mid)):
            etag = ""  # the version on disk went away (cleanup, a new pod), or its key is no longer trusted
        got = self._read(key, etag)
        if got is None:
            return mid
        body, etag = got
        try:
            m = parse_manifest(body, self.repo, keys=self.keys)
        except Refused as exc:
            raise VersionError(self._keeps(f"its manifest {self._url(key)} was refused: {exc}")) from None
        self.ensure(m.id, Version(etag, m))
        self._write(self.meta / "current", f"{m.id} {etag}\n".encode())
        return m.id

    def ensure(self, mid: str, version: Version | None = None) -> Path:
        """The folder of version `mid`, built first if it is not on this host (from the history, unless given)."""
        try:
            target = self.path(check_manifest_id(mid))
        except ValueError as exc:
            raise VersionError(f"repo {self.repo!r} has no version {mid!r}: {exc}") from None
        if target.is_dir() and (not self.keys or self._signed_here(mid)):
            return target
        if target.is_dir():  # this host's copy of its manifest is not signed by a trusted key
            self._write(self._copy(mid), self._history(mid).to_json())
            return target
        if version is None:
            version = Version(f"pin:{mid}", self._history(mid))
        self._write(self._copy(mid), version.manifest.to_json())
        base = self._closest(version.manifest)
        report = build_version(self.bucket, self.remote, self.location, self.repo, version, self.versions_dir,
                               self.meta / "tmp", base)
        log.info("built version %s of repo %r: %d files downloaded (%d bytes), %d linked from %s",
                 mid, self.repo, report.fetched, report.bytes, len(version.manifest.files) - report.fetched,
                 base.manifest.id if base else "no earlier version",
                 extra={"repo": self.repo, "version": mid, "fetched": report.fetched})
        return target

    def tidy(self) -> None:
        """Remove what dead builders left and the manifest copies of versions that cleanup removed.

        Only under the lock that every builder of this store holds: a live build would lose its staging folder.
        """
        current = self.current()
        for folder, keep in ((self.versions_dir, lambda n: not n.startswith(STAGING)), (self.meta / "tmp", None)):
            try:
                names = os.listdir(folder)
            except FileNotFoundError:
                continue
            for name in names:
                if keep is None or not keep(name):
                    remove_tree(str(folder / name))
        try:
            copies = os.listdir(self.meta / "manifests")
        except FileNotFoundError:
            return
        for name in copies:
            mid = name.removesuffix(".json")
            if mid != current and not self.path(mid).is_dir():
                remove_tree(str(self.meta / "manifests" / name))

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
            other = self.local_manifest(name)
            if other is None:
                continue
            shared = len(wanted & {(f.path, f.etag) for f in other.files})
            if shared > score:
                best, score = Base(str(self.path(name)), other), shared
        return best

    def _read(self, key: str, etag: str) -> tuple[bytes, str] | None:
        try:
            return self.bucket.read_if_changed(key, etag)
        except Exception as exc:
            if is_missing(exc):
                raise VersionError(self._keeps(f"it has no manifest at {self._url(key)}; publish it with "
                                               f"`objsync push`")) from None
            raise VersionError(self._keeps(f"cannot read its manifest {self._url(key)}: {describe_error(exc)}")) from None

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
            return parse_manifest(b"".join(chunks), self.repo, mid, self.keys)
        except (Refused, ManifestError) as exc:
            raise VersionError(f"version {mid} of repo {self.repo!r} in {self._url(key)} was refused: {exc}") from None

    def _signed_here(self, mid: str) -> bool:
        """True when this host's copy of the version's manifest is signed by one of the trusted keys."""
        m = self.local_manifest(mid)
        try:
            return m is not None and check_signature(m, self.keys) is None
        except Refused:
            return False

    def _or_none(self, mid: str) -> Manifest | None:
        try:
            return self._history(mid)
        except VersionError:
            return None

    def _copy(self, mid: str) -> Path:
        return self.meta / "manifests" / f"{check_manifest_id(mid)}.json"

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


"""The push planner: a pure function from (files to publish, listing of the repo folder) to a PushPlan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from objsync.deletecap import max_delete_count
from objsync.manifest import FileEntry, Manifest
from objsync.model import RemoteObject
from objsync.s3.etag import is_md5_etag


@dataclass(frozen=True)
class PushRules:
    """The user's delete policy for one push or promote."""

    allow_empty: bool = False
    max_delete: str | None = None  # "N" objects or "P%" of the repo's objects; None for no cap


@dataclass(frozen=True, slots=True)
class Transfer:
    """Put one file at `key`; `file` holds its size, MD5 and the ETag objsync expects it to get."""

    file: FileEntry
    key: str
    reason: str


@dataclass(frozen=True)
class PushPlan:
    """What a push does: transfers, then (if all succeed) deletes, then the manifest."""

    folder: str  # "<prefix>/<repo>/"
    transfers: tuple[Transfer, ...]
    unchanged: tuple[FileEntry, ...]  # as they stand in the bucket
    deletes: tuple[str, ...]  # keys, all below `folder`
    listed: int
    blocked: str | None = None

    @property
    def bytes(self) -> int:
        return sum(t.file.size for t in self.transfers)


def plan_push(files: Iterable[FileEntry], listing: Iterable[RemoteObject], folder: str,
              previous: Manifest | None = None, rules: PushRules = PushRules()) -> PushPlan:
    """Decide every transfer and delete below `folder` (ending in '/'); no I/O.

    A file is unchanged when the object's ETag is the expected one or its MD5, or when the previous
    manifest recorded the same ETag for the same MD5 (this covers KMS ETags and copied objects).
    """
    if not folder.endswith("/"):
        raise ValueError(f"folder {folder!r} must end in '/'")
    remote = {obj.key[len(folder):]: obj for obj in listing if obj.key.startswith(folder)}
    before = previous.by_path() if previous is not None else {}
    wanted = sorted(files, key=lambda f: f.path)
    transfers: list[Transfer] = []
    unchanged: list[FileEntry] = []
    for f in wanted:
        obj = remote.get(f.path)
        if obj is None:
            transfers.append(Transfer(f, folder + f.path, "new"))
        elif obj.size == f.size and _same(obj, f, before.get(f.path)):
            known = before.get(f.path)
            version = known.version_id if known is not None and known.etag == obj.etag else None
            unchanged.append(FileEntry(f.path, f.size, obj.etag, f.md5, version, f.sha256))
        else:
            transfers.append(Transfer(f, folder + f.path, "changed"))
    paths = {f.path for f in wanted}
    deletes = sorted(folder + rel for rel in remote if rel not in paths)
    blocked = _guard(len(wanted), len(deletes), len(remote), folder, rules)
    return PushPlan(folder, tuple(transfers), tuple(unchanged), tuple(deletes), len(remote), blocked)


def _same(obj: RemoteObject, f: FileEntry, known: FileEntry | None) -> bool:
    etag = obj.etag.lower()
    if etag == f.etag.lower() or (is_md5_etag(etag) and etag == f.md5):
        return True
    return known is not None and known.etag == obj.etag and known.md5 == f.md5 and known.size == obj.size


def _guard(n_files: int, n_deletes: int, n_remote: int, folder: str, rules: PushRules) -> str | None:
    if n_files == 0 and not rules.allow_empty:
        return (f"there is nothing to publish, which would empty {folder} ({n_remote} objects); "
                f"check the source folder and excludes, or pass --allow-empty if that is intended")
    cap = max_delete_count(rules.max_delete, n_remote)
    if cap is not None and n_deletes > cap:
        return (f"{n_deletes} stale objects to delete in {folder} exceed --max-delete {rules.max_delete} "
                f"({cap} of {n_remote}), so nothing was published; raise --max-delete if this is intended")
    return None

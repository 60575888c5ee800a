"""The top level of a prefix in manifest mode: what has no manifest ("surveyed" on a rescan), and, on a
process's first pass with nothing applied, each top-level folder's manifest read by name.

Such a first pass must read every manifest anyway, so reading them by name saves the LIST of the
manifests' folder: a cold pull of one repo is one LIST of the top level, one GET of its manifest
and one of its pack.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from objsync.layout import check_repo_name, manifest_key
from objsync.model import RemoteObject
from objsync.paths import STATE_DIR, is_dir_marker
from objsync.s3.bucket import Bucket
from objsync.s3.errors import is_missing
from objsync.s3.records import Buffer, ReadInfo, ReadRequest

Level = tuple[list[RemoteObject], list[str]]  # a LIST with Delimiter='/': objects, and sub-folders


@dataclass(frozen=True)
class FirstLook:
    """The top level, and the manifests found by name there: their objects, and the bytes already read."""

    level: Level | None  # None: not listed whole, as there is no manifest
    manifests: Mapping[str, RemoteObject]
    bodies: Mapping[str, tuple[bytes, ReadInfo]]


def first_look(bucket: Bucket, prefix: str, skip: frozenset[str]) -> FirstLook | None:
    """List the top level and GET the manifest of each folder not in `skip`; None when one cannot be read
    (an error other than its absence), so that the caller lists the manifests' folder instead."""
    state = f"{prefix}{STATE_DIR}/"
    level = bucket.list_level(prefix, needs=state)  # without it, a large flat folder is not listed twice
    if state not in level[1]:
        return FirstLook(None, {}, {})  # no manifest can exist
    names = [n for n in _folder_names(prefix, level[1]) if n != STATE_DIR and n not in skip and _repo_name(n)]
    buffers = [Buffer() for _ in names]
    keys = [manifest_key(prefix, n) for n in names]
    reads = bucket.read_many([ReadRequest(k, "", (lambda b=b: b)) for k, b in zip(keys, buffers)])
    manifests, bodies = {}, {}
    for name, key, read in zip(names, keys, reads):
        if read.ok:
            body = read.sink.getvalue()
            manifests[name] = RemoteObject(key, read.info.etag, len(body), 0)
            bodies[name] = (body, read.info)
        elif not is_missing(read.error):
            return None
    return FirstLook(level, manifests, bodies)


def survey(bucket: Bucket, prefix: str, names: frozenset[str],
           level: Level | None = None) -> tuple[list[RemoteObject], frozenset[str]]:
    """What has no manifest: top-level objects, and every object of each top-level folder not in `names`;
    and the top-level names they make up."""
    objects, folders = level if level is not None else bucket.list_level(prefix)
    objects = list(objects)
    tops = {_top(prefix, o.key) for o in objects if not is_dir_marker(o.key)}
    for name, folder in zip(_folder_names(prefix, folders), folders):
        if name in names or name == STATE_DIR or not name:
            continue
        listed = bucket.list(folder)
        objects += listed
        if listed:
            tops.add(name)
    return objects, frozenset(t for t in tops if t and t != STATE_DIR)


def _repo_name(name: str) -> bool:
    """True when a folder of this name can have a manifest; any other is surveyed like a folder without one."""
    try:
        check_repo_name(name)
    except ValueError:
        return False
    return True


def _folder_names(prefix: str, folders: list[str]) -> list[str]:
    return [f[len(prefix):].rstrip("/") if f.startswith(prefix) else "" for f in folders]


def _top(prefix: str, key: str) -> str:
    return key[len(prefix):].partition("/")[0] if key.startswith(prefix) else ""

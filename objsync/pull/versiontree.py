"""One repo version built into a folder of its own, for consumers that keep every version apart (Airflow 3 bundles).

`build_version` runs an ordinary pull pass: the listing is the version's manifest, the local
files are those of a base version already on disk, and the publisher is a `VersionTree`. Files
whose ETag and size match the base are hard-linked from it; the others are downloaded (by
VersionId where the manifest has one) and verified through the same pool and writer as a pull.
The tree is filled in a staging folder beside its target and renamed into place only when every
file arrived, so no reader ever sees part of a version, and a finished tree is never changed.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Sequence

from objsync.manifest import Manifest
from objsync.model import Entry, FetchResult, Fsync, Job, LocalFile, Outcome, PassReport, Plan, Problem
from objsync.pull.config import PullConfig, WriteOptions
from objsync.pull.listing import View
from objsync.pull.local import scan_tree, walk_tree
from objsync.pull.packs import PackedFetcher
from objsync.pull.pipeline import pull_pass
from objsync.pull.decide import Rules
from objsync.pull.plan import Planned
from objsync.pull.pool import Pool, PoolConfig
from objsync.pull.publish import Finished
from objsync.pull.snapshot import link_tree
from objsync.pull.state import State
from objsync.pull.versions import Version, manifest_listing
from objsync.s3.bucket import Bucket
from objsync.s3.config import IN_FLIGHT, Location, RemoteConfig

# A version is exactly what its manifest names: removing files is not a mistake to guard against.
_EXACT = Rules(allow_empty=True, max_delete="100%")
STAGING = ".building-"  # a version's folder while it is filled, beside where it will be renamed


@dataclass(frozen=True)
class Base:
    """A finished version on disk, whose unchanged files a new version hard-links."""

    path: str
    manifest: Manifest


class VersionError(Exception):
    """A version could not be built; the message names the repo and what went wrong."""


class VersionTree:
    """A publisher that fills `staging` and renames it to `target` only when every file of the version arrived."""

    def __init__(self, staging: str, target: str, base: Base | None) -> None:
        self.root, self.target, self.base = staging, target, base
        self._base_files: dict[str, LocalFile] | None = None

    def scan(self, top: str) -> dict[str, LocalFile]:
        return {rel: lf for rel, lf in self.scan_all().items() if rel == top or rel.startswith(top + "/")}

    def scan_all(self) -> dict[str, LocalFile]:
        # A finished version never changes: the plan and the links look at the same one scan of it.
        if self._base_files is None:
            self._base_files = scan_tree(self.base.path) if self.base is not None else {}
        return self._base_files

    def walk_all(self) -> Iterator[tuple[str, LocalFile]]:
        return walk_tree(self.base.path) if self.base is not None else iter(())

    def tidy(self) -> None:
        pass

    def begin(self, planned: Planned, labels: Mapping[str, str]) -> "_TreePass":
        p = planned.whole()  # the unchanged files are linked in before any fetch
        local = self.scan_all()  # what the plan looked at
        fetched = {f.rel for f in p.fetches}
        gone = set(p.deletes) | set(p.displaced)
        stays = sorted(rel for rel in local if rel not in fetched and rel not in gone)
        link_tree(self.base.path if self.base is not None else self.root, self.root, stays)
        # link_tree skips a file that vanished (a cleanup may remove the base meanwhile); a version is
        # never patched later, so a missing file fails the build, and the next attempt picks another base.
        missing = [rel for rel in stays if not os.path.lexists(os.path.join(self.root, rel))]
        if missing:
            self.discard()
            raise VersionError(f"{len(missing)} files of the base version {self.base.manifest.id} vanished while "
                               f"they were linked (first: {missing[0]!r})")
        return _TreePass(self, [Job(f, self.root, f.rel) for f in p.fetches])

    def discard(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class _TreePass:
    tree: VersionTree
    jobs: Sequence[Job]
    problems: tuple[Problem, ...] = ()

    def commit(self, results: Sequence[FetchResult]) -> None:
        pass  # a version folder is its own record: nothing is cached

    def finish(self, p: Plan, outcome: Outcome) -> Finished:
        tree = self.tree
        if p.rejected or not outcome.succeeded(p.fetches):  # a version is all of its files, or nothing
            tree.discard()
            return Finished()
        try:
            os.rename(tree.root, tree.target)
        except OSError:
            if not os.path.isdir(tree.target):
                tree.discard()
                raise
            tree.discard()  # another process built the same version first: it is the same tree
        return Finished(deleted=len(p.deletes))


class _OneView:
    """The listing of one version, planned against the base version's files."""

    def __init__(self, view: View) -> None:
        self._view = view

    def view(self) -> View:
        return self._view

    def settle(self, view: View, p: Plan | None, problems: Sequence[Problem], interrupted: bool) -> None:
        pass


def build_version(bucket: Bucket, remote: RemoteConfig, location: Location, repo: str, version: Version,
                  versions_dir: Path, tmp: Path, base: Base | None = None, *, threads: int = IN_FLIGHT) -> PassReport:
    """Build `version` of `repo` at `versions_dir/<manifest id>`, reading through (a sibling of) `bucket`.

    Raises VersionError, naming the repo and the reason, when the version cannot be completed.
    """
    m = version.manifest
    target = versions_dir / m.id
    staging = versions_dir / f"{STAGING}{m.id}-{os.getpid()}-{os.urandom(4).hex()}"
    tree = VersionTree(str(staging), str(target), base)
    local = tree.scan_all()
    state = State.in_memory(_entries(base, local, m))
    prefix = f"{location.prefix.rstrip('/')}/" if location.prefix.strip("/") else ""
    listing = sorted(manifest_listing(prefix, {repo: version}), key=lambda o: o.key)
    view = View(listing, sorted(local.items()), listed=len(m.files))
    cfg = PullConfig(source=Location(location.bucket, f"{prefix}{repo}"), dest=staging, remote=remote, rules=_EXACT,
                     pool=PoolConfig(workers=0, threads=threads), fsync=Fsync.BATCH)
    tmp.mkdir(parents=True, exist_ok=True)
    versions_dir.mkdir(parents=True, exist_ok=True)
    opts = WriteOptions(tmp=str(tmp), bucket=location.bucket, file_mode=0o644, fsync=Fsync.BATCH)
    try:
        with Pool(remote, opts, cfg.pool, reader=bucket.sibling()) as pool:
            report = pull_pass(cfg, _OneView(view), state, PackedFetcher(pool, bucket, opts), tree)
    except VersionError as exc:
        raise VersionError(f"version {m.id} of repo {repo!r} was not built: {exc}") from None
    finally:
        if staging.exists():
            tree.discard()
    if not target.is_dir():
        why = "; ".join(f"{p.key}: {p.error}" for p in report.errors) or "the pass did not complete"
        raise VersionError(f"version {m.id} of repo {repo!r} was not built: {why}")
    return report


def _entries(base: Base | None, local: Mapping[str, LocalFile], m: Manifest) -> dict[str, Entry]:
    """What the base holds, as the planner's cache: a path with the same ETag and size is linked, not fetched.

    A file that `m` signs is linked only when the base's manifest signed the same SHA-256.
    """
    if base is None:
        return {}
    signed = {f.path: f.sha256 for f in m.files if f.sha256}
    out = {}
    for f in base.manifest.files:
        lf = local.get(f.path)
        if lf is None or lf.is_link or lf.size != f.size or signed.get(f.path, f.sha256) != f.sha256:
            continue
        out[f.path] = Entry(f.etag, f.size, lf.mtime_ns, "")
    return out

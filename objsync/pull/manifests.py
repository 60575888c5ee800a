"""Manifest mode: each poll sends one LIST of `<prefix>/.objsync/manifests/`, and reads only what changed.

A repo whose manifest ETag is the one already applied costs nothing more; a changed one costs one
GET of its manifest, and the planner sees its entries instead of a listing of its folder.
Top-level files and folders without a manifest are listed as well ("surveyed", survey.py) on a
rescan, or while there are any. A process's first pass with nothing applied reads each top-level
folder's manifest by name instead of listing the manifests. Between rescans, local files are taken to be what the cache recorded,
except under folders that can have changed.

With verify keys, only manifests signed by one of them are used, and manifest mode never ends;
top-level names without a manifest are refused (held as they are locally) unless `allow_unsigned`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

from objsync.layout import MANIFESTS, history_key, manifest_key
from objsync.model import Kind, LocalFile, Mode, Plan, Problem, RemoteObject
from objsync.paths import STATE_DIR, Filter, normalize_prefix
from objsync.pull.config import DEFAULT_RESCAN
from objsync.pull.listing import LocalTree, View
from objsync.pull.local import top_names
from objsync.pull.state import State
from objsync.pull.survey import first_look, survey
from objsync.s3.bucket import Bucket
from objsync.s3.errors import describe_error
from objsync.s3.records import ReadInfo

if TYPE_CHECKING:  # manifests are read, and signatures checked, only once a manifest is met
    from objsync.pull.versions import Version
    from objsync.signing import VerifyKey

_MEMO = "manifest:"


@dataclass(frozen=True)
class Refusal:
    """A manifest that was refused, by the source it came from, and the problem to report while it stays."""

    source: str
    problem: Problem


@dataclass(frozen=True)
class Memory:
    """What manifest mode knows between passes, besides the versions it applied."""

    refused: Mapping[str, Refusal] = field(default_factory=dict)
    plain: frozenset[str] | None = None  # top-level names without a manifest; None: not surveyed yet
    names: frozenset[str] | None = None  # the repos with a manifest (or a pin) at the last pass
    last_rescan: float | None = None
    listed: int = 0
    unsigned: Mapping[str, Problem] = field(default_factory=dict)  # top-level names refused for want of a signature


@dataclass(frozen=True)
class Memo:
    """What one view brings in, recorded by `settle` once the pass's outcome is known."""

    incoming: Mapping[str, Version]
    names: frozenset[str]
    plain: frozenset[str]
    rescan: bool
    listed: int
    refused: Mapping[str, Refusal | None]  # refusals met (None: a repo whose manifest now reads)
    unsigned: Mapping[str, Problem] = field(default_factory=dict)


class ManifestMode:
    """Builds manifest-mode views, and remembers the versions applied (in the state cache) across restarts."""

    def __init__(self, bucket: Bucket, prefix: str, tree: LocalTree, state: State, *, filter: Filter = Filter(),
                 pins: Mapping[str, str] | None = None, rescan_every: float = DEFAULT_RESCAN,
                 clock: Callable[[], float] = time.monotonic, keys: Sequence[VerifyKey] = (),
                 allow_unsigned: bool = False) -> None:
        self.bucket, self.prefix, self.tree, self.state = bucket, normalize_prefix(prefix), tree, state
        self.filter, self.pins, self.rescan_every, self.clock = filter, dict(pins or {}), rescan_every, clock
        self.keys, self.allow_unsigned = tuple(keys), allow_unsigned
        self.applied: dict[str, Version] = self._load()
        self.memory = Memory()
        self.rescan_asked = True  # the first pass of a process looks at every local file
        self._expect: dict[str, tuple[Version, dict[str, tuple[str, int]]]] = {}

    @property
    def active(self) -> bool:
        """True when a previous run applied manifests, repos are pinned, or versions must be signed."""
        return bool(self.applied or self.pins or self.keys)

    def request_rescan(self) -> None:
        self.rescan_asked = True

    def leave(self) -> None:
        for repo in list(self.applied):
            self._remember(repo, None)
        self.memory = Memory()

    # -- views ------------------------------------------------------------------------------------

    def view(self) -> View | None:
        if not self.applied and self.memory.names is None:
            look = first_look(self.bucket, self.prefix, frozenset(self.pins))
            if look is not None:
                if not (look.manifests or self.pins or self.keys):
                    return None
                names = frozenset(look.manifests) | frozenset(self.pins)
                plain, plain_names = survey(self.bucket, self.prefix, names, look.level)
                return self._build(look.manifests, plain, plain_names, [], rescan=True, bodies=look.bodies)
        from objsync.pull.versions import manifest_names

        folder = self.prefix + MANIFESTS
        manifests, problems = manifest_names(self.bucket.list(folder), folder)
        if not manifests and not self.pins and not self.keys:
            return None  # every manifest is gone: back to LIST mode, in this same pass
        names = frozenset(manifests) | frozenset(self.pins)
        m = self.memory
        rescan = self.rescan_asked or m.last_rescan is None or self.clock() - m.last_rescan >= self.rescan_every
        surveyed = rescan or m.plain is None or bool(m.plain) or names != m.names
        wanted = {repo: self._wanted(repo, manifests) for repo in names}
        changed = [repo for repo, source in wanted.items()
                   if (repo not in self.applied or self.applied[repo].source != source)
                   and (repo not in m.refused or m.refused[repo].source != source)]
        if not (changed or surveyed):
            problems += [r.problem for repo, r in m.refused.items() if wanted.get(repo) == r.source]
            problems += m.unsigned.values()
            return View(problems=tuple(problems), listed=m.listed, mode=Mode.MANIFEST, unchanged=True,
                        labels=_labels(self.applied))
        plain: list[RemoteObject] = []
        plain_names: frozenset[str] | None = None
        if surveyed:
            plain, plain_names = survey(self.bucket, self.prefix, names)
        return self._build(manifests, plain, plain_names, problems, rescan=rescan)

    def present(self) -> bool:
        """Whether manifest mode is due: pins or keys require it, or the manifests' folder holds any."""
        return bool(self.pins or self.keys) or bool(self.bucket.list(self.prefix + MANIFESTS))

    def view_of(self, listing: Sequence[RemoteObject]) -> View | None:
        from objsync.pull.versions import manifest_names

        folder = self.prefix + MANIFESTS
        manifests, problems = manifest_names([o for o in listing if o.key.startswith(folder)], folder)
        if not (manifests or self.pins or self.keys):
            return None
        names = frozenset(manifests) | frozenset(self.pins)
        plain = [o for o in listing if self._top(o.key) not in names and self._top(o.key) != STATE_DIR]
        plain_names = frozenset(t for t in map(self._top, (o.key for o in plain)) if t)
        return self._build(manifests, plain, plain_names, problems, rescan=True)

    def _build(self, manifests: Mapping[str, RemoteObject], plain: list[RemoteObject],
               plain_names: frozenset[str] | None, problems: list[Problem], *, rescan: bool,
               bodies: Mapping[str, tuple[bytes, ReadInfo]] | None = None) -> View:
        from objsync.pull.versions import Refused, manifest_listing

        names = frozenset(manifests) | frozenset(self.pins)
        m = self.memory
        versions: dict[str, Version] = {}
        incoming: dict[str, Version] = {}
        refused: dict[str, Refusal | None] = {}
        held: set[str] = set()
        unsigned = dict(m.unsigned)
        if self.keys and not self.allow_unsigned:
            if plain_names is not None:  # surveyed: these names are what is there now
                unsigned = {name: self._unsigned(name) for name in sorted(plain_names)}
            plain, plain_names = [], frozenset()
            held |= set(unsigned)
            problems += unsigned.values()
        for repo in sorted(names):
            source = self._wanted(repo, manifests)
            current = self.applied.get(repo)
            if current is not None and current.source == source:
                versions[repo] = current
                continue
            before = m.refused.get(repo)
            if before is not None and before.source == source:
                problems.append(before.problem)
            else:
                try:
                    version = self._read(repo, source, manifests.get(repo), (bodies or {}).get(repo))
                except Refused as exc:
                    problem = Problem(self._key(repo, source), (
                        f"manifest of repo {repo!r} refused: {exc}; the repo's files were left as they are "
                        f"until a valid manifest is published"), Kind.REJECTED)
                    refused[repo] = Refusal(source, problem)
                    problems.append(problem)
                except Exception as exc:  # a failed GET is retried at the next pass
                    problems.append(Problem(self._key(repo, source), f"cannot read the manifest of repo {repo!r}: "
                                                                     f"{describe_error(exc)}", Kind.LISTING))
                else:
                    refused[repo] = None
                    versions[repo] = incoming[repo] = version
                    continue
            if current is not None:
                versions[repo] = current  # the previous version stays, and damage to it is still repaired
            else:
                held.add(repo)  # never seen valid: its folder is neither changed nor deleted

        if rescan:
            local = self.tree.scan_all()
            if not (incoming or held or plain) and self._intact(versions, local):
                # Every local file is the one the cache recorded for the manifests: there is nothing to plan.
                listed = sum(len(v.manifest.files) for v in versions.values())
                memo = Memo({}, names, plain_names or frozenset(), True, listed, refused, unsigned)
                return View(problems=tuple(problems), listed=listed, mode=Mode.MANIFEST, unchanged=True,
                            rescan=True, labels=_labels(versions), memo=memo)
        else:
            # Only what can have changed is looked at; the rest is taken to be what the cache recorded.
            known = set(versions) | held | (plain_names or set()) | (m.plain or set())
            look = set(incoming) | (plain_names or set()) | {t for t in top_names(self.tree.root) if t not in known}
            local = {rel: LocalFile(e.size, e.mtime_ns) for rel, e in self.state.entries.items()
                     if rel.partition("/")[0] not in look}
            for top in sorted(look):
                local.update(self.tree.scan(top))
        if plain_names is None:
            plain_names = m.plain or frozenset()
        listing = manifest_listing(self.prefix, versions) + plain
        memo = Memo(incoming, names, plain_names, rescan, len(listing), refused, unsigned)
        # The planner walks both sides in path order.
        listing.sort(key=lambda o: o.key)
        return View(listing, sorted(local.items()), tuple(problems), len(listing), Mode.MANIFEST, held=frozenset(held),
                    labels=_labels(versions), memo=memo)

    # -- after the pass ---------------------------------------------------------------------------

    def settle(self, view: View, p: Plan | None, problems: Sequence[Problem], interrupted: bool) -> None:
        """Apply each incoming repo whose files all arrived; record refusals and the survey."""
        memo = view.memo
        if not isinstance(memo, Memo):
            return
        refused = {r: x for r, x in {**self.memory.refused, **memo.refused}.items() if x is not None}
        if interrupted:
            self.memory = replace(self.memory, refused=refused, listed=memo.listed)
            return
        for repo in [r for r in self.applied if r not in memo.names]:
            self._remember(repo, None)
        fetch_failed = any(x.kind == Kind.FETCH for x in problems)
        for repo, version in memo.incoming.items():
            folder = f"{self.prefix}{repo}/"
            touched = any(x.key.startswith(folder) or x.key.startswith(repo + "/") for x in problems)
            deletes = p is not None and any(rel.startswith(repo + "/") for rel in (*p.deletes, *p.displaced))
            if touched or (p is not None and p.delete_blocked) or (deletes and fetch_failed):
                continue  # the next pass reads its manifest again and finishes the work
            self._remember(repo, version)
        self.memory = Memory(refused, memo.plain, memo.names,
                             self.clock() if memo.rescan else self.memory.last_rescan, memo.listed, memo.unsigned)
        if memo.rescan:
            self.rescan_asked = False

    # -- helpers ----------------------------------------------------------------------------------

    def _intact(self, versions: Mapping[str, Version], local: Mapping[str, LocalFile]) -> bool:
        """True when each selected file of the manifests is in place as the cache recorded it, and nothing else is."""
        entries, matched = self.state.entries, 0
        for repo, version in versions.items():
            for rel, (etag, size) in self._expected(repo, version).items():
                lf, e = local.get(rel), entries.get(rel)
                if (lf is None or e is None or lf.is_link or (e.etag, e.size) != (etag, size)
                        or (lf.size, lf.mtime_ns) != (e.size, e.mtime_ns)):
                    return False
                matched += 1
        if matched == len(local):
            return True
        for rel in local:
            repo = rel.partition("/")[0]
            if repo not in versions or (rel not in self._expected(repo, versions[repo]) and self.filter.selects(rel)):
                return False  # a file to delete, or a top-level name without a manifest
        return True

    def _expected(self, repo: str, version: Version) -> dict[str, tuple[str, int]]:
        """Path -> (ETag, size) of the files of one version that the filter selects, kept per version."""
        kept = self._expect.get(repo)
        if kept is None or kept[0] is not version:
            folder = repo + "/"
            table = {folder + f.path: (f.etag, f.size) for f in version.manifest.files}
            if self.filter.includes or self.filter.excludes:
                table = {rel: v for rel, v in table.items() if self.filter.selects(rel)}
            kept = self._expect[repo] = (version, table)
        return kept[1]

    def _read(self, repo: str, source: str, obj: RemoteObject | None,
              read: tuple[bytes, ReadInfo] | None = None) -> Version:
        from objsync.pull.versions import Version, read_manifest

        mid = source[4:] if source.startswith("pin:") else None
        return Version(source, read_manifest(self.bucket, self.prefix, repo, obj, mid, self.keys, read))

    def _unsigned(self, name: str) -> Problem:
        return Problem(self.prefix + name, (
            f"{name!r} has no manifest, so nothing signs it: with --verify-key only versions published by "
            f"`objsync push --sign-key` are mirrored, so it was not, and any local copy was left as it is "
            f"(--allow-unsigned-folders mirrors such names unchecked)"), Kind.REJECTED)

    def _wanted(self, repo: str, manifests: Mapping[str, RemoteObject]) -> str:
        return f"pin:{self.pins[repo]}" if repo in self.pins else manifests[repo].etag

    def _key(self, repo: str, source: str) -> str:
        if source.startswith("pin:"):
            return history_key(self.prefix, repo, source[4:])
        return manifest_key(self.prefix, repo)

    def _top(self, key: str) -> str:
        return key[len(self.prefix):].partition("/")[0] if key.startswith(self.prefix) else ""

    def _load(self) -> dict[str, Version]:
        applied = {}
        for name, text in list(self.state.memos.items()):
            if not name.startswith(_MEMO):
                continue
            from objsync.pull.versions import Refused, Version, parse_manifest

            repo = name[len(_MEMO):]
            source, _, body = text.partition("\n")
            try:
                applied[repo] = Version(source, parse_manifest(body.encode(), repo, keys=self.keys))
            except (Refused, ValueError):
                self.state.drop_memo(name)  # a record that no longer reads is forgotten, never trusted
        return applied

    def _remember(self, repo: str, version: Version | None) -> None:
        if version is None:
            self.applied.pop(repo, None)
            self.state.drop_memo(_MEMO + repo)
        else:
            self.applied[repo] = version
            self.state.put_memo(_MEMO + repo, version.source + "\n" + version.manifest.to_json().decode())


def _labels(versions: Mapping[str, Version]) -> dict[str, str]:
    return {repo: v.manifest.id for repo, v in versions.items()}

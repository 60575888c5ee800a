"""Where a pass's listing comes from: one LIST of the prefix, or the repos' manifests (manifest mode).

Manifest mode starts by itself when `<prefix>/.objsync/manifests/` holds manifests. Each poll then
sends one LIST of that folder. A repo whose manifest ETag is the one already applied costs nothing
more; a changed one costs one GET of its manifest, and the planner sees its entries instead of a
listing of its folder. Top-level files and folders without a manifest are listed as before. The
planner always sees one listing of the whole prefix and one view of the whole folder, so every
guard applies exactly as in LIST mode.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Callable, Iterable, Mapping, Sequence

from objsync.layout import check_manifest_id, check_repo_name, history_key, manifest_key
from objsync.manifest import TIME_FORMAT, FileEntry, Manifest, ManifestError
from objsync.model import LocalFile, Plan, RemoteObject
from objsync.paths import STATE_DIR, Filter, is_dir_marker, nfc, normalize_prefix, parents
from objsync.pull import localfs
from objsync.pull.plan import Rules
from objsync.pull.state import State
from objsync.s3.bucket import Bucket
from objsync.s3.errors import describe_error

log = logging.getLogger(__name__)

MANIFESTS = f"{STATE_DIR}/manifests/"
MAX_MANIFEST_BYTES = 128 << 20  # about 600,000 files; a larger document is refused, not read
DEFAULT_RESCAN = 300.0  # a stat of 100,000 files costs ~0.65 s of CPU: ~11 ms a 5 s poll on average
_MEMO = "manifest:"


class Refused(Exception):
    """A manifest that will not be used; the message says why."""


@dataclass(frozen=True, slots=True)
class Version:
    """The version of one repo that passes plan from: where it came from, and the manifest."""

    source: str  # the current manifest's ETag, or "pin:<id>" for a version read from history
    manifest: Manifest


@dataclass(frozen=True)
class View:
    """What one pass plans from: one listing of the prefix, the local files, and the rules."""

    listing: Sequence[RemoteObject] = ()
    local: Mapping[str, LocalFile] = field(default_factory=dict)
    rules: Rules = field(default_factory=Rules)
    problems: tuple[tuple[str, str, str], ...] = ()  # (key, error, kind) met while building the view
    listed: int = 0
    mode: str = "list"  # "list" or "manifest"
    unchanged: bool = False  # manifest mode: nothing changed since the last pass, no plan is needed
    rescan: bool = False  # every local file was looked at
    versions: Mapping[str, Version] = field(default_factory=dict)  # manifest repos, by name


def refine(p: Plan, prefix: str, versions: Mapping[str, Version]) -> Plan:
    """Give each fetch of a manifest repo the manifest's VersionId and MD5, to read and check it by."""
    if not versions or not p.fetches:
        return p
    prefix = normalize_prefix(prefix)
    tables: dict[str, dict[str, FileEntry]] = {}
    fetches = []
    for f in p.fetches:
        repo, _, path = f.key[len(prefix):].partition("/")
        version = versions.get(repo)
        if version is not None:
            if repo not in tables:
                tables[repo] = version.manifest.by_path()
            entry = tables[repo].get(path)
            if entry is not None:
                f = replace(f, version_id=entry.version_id, md5=entry.md5)
        fetches.append(f)
    return replace(p, fetches=tuple(fetches))


def explain(error: str) -> str:
    """Say what a failed conditional read of a manifest's file means, and what to do."""
    gone = {"PreconditionFailed": "overwritten", "NoSuchKey": "deleted"}.get(error.partition(" ")[0])
    if gone:
        return (f"{error}: the object is no longer the one the manifest names ({gone} after the push); "
                f"push the repo again, or keep old versions readable with bucket versioning")
    return error


def manifest_listing(prefix: str, versions: Mapping[str, Version]) -> list[RemoteObject]:
    """The objects the manifests name, as a listing would show them (mtime: the manifest's time)."""
    prefix = normalize_prefix(prefix)
    out: list[RemoteObject] = []
    for repo, version in sorted(versions.items()):
        m = version.manifest
        mtime_ns = int(datetime.strptime(m.created, TIME_FORMAT).replace(tzinfo=timezone.utc).timestamp()) * 10**9
        folder = f"{prefix}{repo}/"
        out += [RemoteObject(folder + f.path, f.etag, f.size, mtime_ns) for f in m.files]
    return out


def layout_problem(m: Manifest) -> str | None:
    """Paths that cannot coexist in a folder (a file that is also a folder, Unicode look-alikes)."""
    paths = {f.path for f in m.files}
    for path in sorted(paths):
        for parent in parents(path):
            if parent in paths:
                return f"{parent!r} is both a file and a folder (another path is {path!r})"
    forms: dict[str, str] = {}
    for path in sorted(paths):
        other = forms.setdefault(nfc(path), path)
        if other != path:
            return f"{other!r} and {path!r} differ only in Unicode normalization"
    return None


def parse_manifest(body: bytes, repo: str, pinned: str | None = None) -> Manifest:
    """Validate one downloaded manifest for `repo` (and the pinned id); raises Refused."""
    try:
        m = Manifest.from_json(body)
    except ManifestError as exc:
        raise Refused(str(exc)) from None
    if m.repo != repo:
        raise Refused(f"it names repo {m.repo!r}, not {repo!r}")
    if pinned is not None and m.id != pinned:
        raise Refused(f"it holds version {m.id}, not {pinned}")
    why = layout_problem(m)
    if why:
        raise Refused(why)
    return m


def manifest_names(listing: Iterable[RemoteObject], folder: str) -> tuple[dict[str, RemoteObject], list[tuple[str, str, str]]]:
    """Repo name -> manifest object for each `<repo>.json` under `folder`; anything else is a problem."""
    found: dict[str, RemoteObject] = {}
    problems = []
    for obj in listing:
        name = obj.key[len(folder):] if obj.key.startswith(folder) else ""
        repo = name[:-5] if name.endswith(".json") else ""
        try:
            check_repo_name(repo)
        except ValueError:
            problems.append((obj.key, f"not a manifest: {MANIFESTS} holds only <repo>.json files with a valid "
                                      f"repo name; ignored", "rejected"))
            continue
        found[repo] = obj
    return found, problems


def scan_below(root: str, top: str) -> dict[str, LocalFile]:
    """The local files at or below the top-level name `top`, keyed by path from the root; never follows a symlink."""
    path = os.path.join(root, top)
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return {}
    if not stat.S_ISDIR(st.st_mode):
        if stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
            return {top: LocalFile(st.st_size, st.st_mtime_ns, stat.S_ISLNK(st.st_mode))}
        return {}
    return scan_tree(path, top + "/")


def scan_tree(path: str, rel_prefix: str) -> dict[str, LocalFile]:
    """Every file and symlink below the folder `path`, keyed `rel_prefix + relative path`."""
    found = {rel_prefix + rel: lf for rel, lf in localfs.scan(path).items()}
    # localfs.scan skips a top-level `.objsync`, which below the root is an ordinary name.
    inner = os.path.join(path, STATE_DIR)
    try:
        st = os.lstat(inner)
    except (FileNotFoundError, NotADirectoryError):
        return found
    if stat.S_ISDIR(st.st_mode):
        found.update(scan_tree(inner, rel_prefix + STATE_DIR + "/"))
    elif stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
        found[rel_prefix + STATE_DIR] = LocalFile(st.st_size, st.st_mtime_ns, stat.S_ISLNK(st.st_mode))
    return found


def top_names(root: str) -> set[str]:
    """The names directly in the destination, objsync's own folder aside."""
    try:
        return {name for name in os.listdir(root) if name != STATE_DIR}
    except FileNotFoundError:
        return set()


@dataclass(frozen=True)
class _Pending:
    """What the pass in flight is bringing in, settled once its outcome is known."""

    versions: dict[str, Version]
    names: frozenset[str]
    plain: frozenset[str] | None
    rescan: bool
    listed: int


class Source:
    """Builds each pass's View, and remembers between passes what manifest mode needs to skip work."""

    def __init__(self, bucket: Bucket, prefix: str, root, state: State, rules: Rules, *,
                 pins: Mapping[str, str] | None = None, rescan_every: float = DEFAULT_RESCAN,
                 use_manifests: bool = True, scan: Callable[[str, str], dict[str, LocalFile]] = scan_below,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.bucket, self.prefix, self.root = bucket, normalize_prefix(prefix), str(root)
        self.state, self.rules, self.pins = state, rules, dict(pins or {})
        self.rescan_every, self.use_manifests, self.scan, self.clock = rescan_every, use_manifests, scan, clock
        self.applied: dict[str, Version] = self._load() if use_manifests else {}
        self.manifest_mode = use_manifests and bool(self.applied or self.pins)
        self.plain: frozenset[str] | None = None  # top-level names without a manifest; None: not surveyed yet
        self._names: frozenset[str] | None = None
        self._refused: dict[str, tuple[str, str, str]] = {}  # repo -> (wanted source, key, reason)
        self._last_rescan: float | None = None
        self._rescan_asked = True  # the first pass of a process looks at every local file
        self._listed = 0
        self._pending: _Pending | None = None
        self._expect: dict[str, tuple[Version, dict[str, tuple[str, int]]]] = {}

    # -- memory kept in the state cache ------------------------------------------------------

    def _load(self) -> dict[str, Version]:
        applied = {}
        for name, text in list(self.state.memos.items()):
            if not name.startswith(_MEMO):
                continue
            repo = name[len(_MEMO):]
            source, _, body = text.partition("\n")
            try:
                applied[repo] = Version(source, parse_manifest(body.encode(), repo))
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

    def request_rescan(self) -> None:
        """Look at every local file and every top-level folder of the bucket at the next pass."""
        self._rescan_asked = True

    # -- building the view ---------------------------------------------------------------------

    def view(self) -> View:
        """The listing and local files of the next pass; raises when the bucket cannot be listed."""
        self._pending = None
        if self.manifest_mode:
            found = self._manifest_view()
            if found is not None:
                return found
        return self._list_view()

    def _list_view(self) -> View:
        listing = self.bucket.list(self.prefix)
        folder = self.prefix + MANIFESTS
        manifests, problems = manifest_names([o for o in listing if o.key.startswith(folder)], folder)
        if not self.use_manifests or not (manifests or self.pins):
            self._leave_manifest_mode()
            local = localfs.scan(self.root) if self.scan is scan_below else self.scan_all()
            return View(listing, local, self.rules, listed=len(listing))
        self.manifest_mode = True
        names = frozenset(manifests) | frozenset(self.pins)
        plain = [o for o in listing if self._top(o.key) not in names and self._top(o.key) != STATE_DIR]
        plain_names = frozenset(t for t in map(self._top, (o.key for o in plain)) if t)
        return self._build(manifests, plain, plain_names, problems, rescan=True)

    def _manifest_view(self) -> View | None:
        folder = self.prefix + MANIFESTS
        manifests, problems = manifest_names(self.bucket.list(folder), folder)
        if not manifests and not self.pins:
            return None  # every manifest is gone: back to LIST mode, in this same pass
        names = frozenset(manifests) | frozenset(self.pins)
        rescan = self._rescan_asked or self._last_rescan is None or (
            self.clock() - self._last_rescan >= self.rescan_every)
        survey = rescan or self.plain is None or bool(self.plain) or names != self._names
        wanted = {repo: self._wanted(repo, manifests) for repo in names}
        changed = {repo for repo, source in wanted.items()
                   if (repo not in self.applied or self.applied[repo].source != source)
                   and self._refused.get(repo, ("",))[0] != source}
        if not (changed or survey):
            problems += [(key, reason, "rejected") for repo, (source, key, reason) in self._refused.items()
                         if wanted.get(repo) == source]
            return View(problems=tuple(problems), listed=self._listed, mode="manifest", unchanged=True,
                        versions=self.applied)
        plain: list[RemoteObject] = []
        plain_names: frozenset[str] | None = None
        if survey:
            plain, plain_names = self._survey(names)
        return self._build(manifests, plain, plain_names, problems, rescan=rescan)

    def _survey(self, names: frozenset[str]) -> tuple[list[RemoteObject], frozenset[str]]:
        """List what has no manifest: top-level objects, and each top-level folder without one."""
        objects, folders = self.bucket.list_level(self.prefix)
        tops = {self._top(o.key) for o in objects if not is_dir_marker(o.key)}
        for folder in folders:
            name = folder[len(self.prefix):].rstrip("/") if folder.startswith(self.prefix) else ""
            if name in names or name == STATE_DIR:
                continue
            listed = self.bucket.list(folder)
            objects += listed
            if listed:
                tops.add(name)
        return objects, frozenset(t for t in tops if t and t != STATE_DIR)

    def _wanted(self, repo: str, manifests: Mapping[str, RemoteObject]) -> str:
        return f"pin:{self.pins[repo]}" if repo in self.pins else manifests[repo].etag

    def _build(self, manifests: Mapping[str, RemoteObject], plain: list[RemoteObject],
               plain_names: frozenset[str] | None, problems: list, *, rescan: bool) -> View:
        names = frozenset(manifests) | frozenset(self.pins)
        versions: dict[str, Version] = {}
        incoming: dict[str, Version] = {}
        held: set[str] = set()
        for repo in sorted(names):
            source = self._wanted(repo, manifests)
            current = self.applied.get(repo)
            if current is not None and current.source == source:
                versions[repo] = current
                continue
            refused = self._refused.get(repo)
            if refused is not None and refused[0] == source:
                problems.append((refused[1], refused[2], "rejected"))
            else:
                try:
                    version = self._read(repo, source, manifests.get(repo))
                except Refused as exc:
                    key = self._key(repo, source)
                    reason = (f"manifest of repo {repo!r} refused: {exc}; the repo's files were left as they are "
                              f"until a valid manifest is published")
                    self._refused[repo] = (source, key, reason)
                    problems.append((key, reason, "rejected"))
                except Exception as exc:  # a failed GET is retried at the next pass
                    problems.append((self._key(repo, source), f"cannot read the manifest of repo {repo!r}: "
                                                              f"{describe_error(exc)}", "listing"))
                else:
                    self._refused.pop(repo, None)
                    versions[repo] = incoming[repo] = version
                    continue
            if current is not None:
                versions[repo] = current  # the previous version stays, and damage to it is still repaired
            else:
                held.add(repo)  # never seen valid: its folder is neither changed nor deleted
        rules = self.rules
        if held:
            f = rules.filter
            rules = replace(rules, filter=Filter(f.includes, f.excludes + tuple(f"{r}/**" for r in sorted(held))))

        local_tops = top_names(self.root)
        if rescan:
            local = self.scan_all()
            if not (incoming or held or plain) and self._intact(versions, local, rules):
                # Every local file is the one the cache recorded for the manifests: there is nothing to plan.
                self._last_rescan, self._rescan_asked = self.clock(), False
                self.plain, self._names = plain_names or frozenset(), names
                self._listed = sum(len(v.manifest.files) for v in versions.values())
                return View(problems=tuple(problems), listed=self._listed, mode="manifest", unchanged=True,
                            rescan=True, versions=versions)
        else:
            # Only what can have changed is looked at; the rest is taken to be what the cache recorded.
            known = set(versions) | held | (plain_names or set()) | (self.plain or set())
            look = set(incoming) | (plain_names or set()) | {t for t in local_tops if t not in known}
            local = {rel: LocalFile(e.size, e.mtime_ns) for rel, e in self.state.entries.items()
                     if rel.partition("/")[0] not in look}
            for top in sorted(look):
                local.update(self.scan(self.root, top))
        if plain_names is None:
            plain_names = self.plain or frozenset()
        listing = manifest_listing(self.prefix, versions) + plain
        self._pending = _Pending(incoming, names, plain_names, rescan, len(listing))
        return View(listing, local, rules, tuple(problems), len(listing), "manifest", versions=versions)

    def _intact(self, versions: Mapping[str, Version], local: Mapping[str, LocalFile], rules: Rules) -> bool:
        """True when each selected file of the manifests is in place as the cache recorded it, and nothing else is."""
        entries, matched = self.state.entries, 0
        for repo, version in versions.items():
            for rel, (etag, size) in self._expected(repo, version, rules).items():
                lf, e = local.get(rel), entries.get(rel)
                if (lf is None or e is None or lf.is_link or (e.etag, e.size) != (etag, size)
                        or (lf.size, lf.mtime_ns) != (e.size, e.mtime_ns)):
                    return False
                matched += 1
        if matched == len(local):
            return True
        for rel in local:
            repo = rel.partition("/")[0]
            if repo not in versions or (rel not in self._expected(repo, versions[repo], rules)
                                        and rules.filter.selects(rel)):
                return False  # a file to delete, or a top-level name without a manifest
        return True

    def _expected(self, repo: str, version: Version, rules: Rules) -> dict[str, tuple[str, int]]:
        """Path -> (ETag, size) of the files of one version that the rules select, kept per version."""
        kept = self._expect.get(repo)
        if kept is None or kept[0] is not version:
            folder = repo + "/"
            table = {folder + f.path: (f.etag, f.size) for f in version.manifest.files}
            if rules.filter.includes or rules.filter.excludes:
                table = {rel: v for rel, v in table.items() if rules.filter.selects(rel)}
            kept = self._expect[repo] = (version, table)
        return kept[1]

    def scan_all(self) -> dict[str, LocalFile]:
        """Every local file below the destination."""
        local: dict[str, LocalFile] = {}
        for top in sorted(top_names(self.root)):
            local.update(self.scan(self.root, top))
        return local

    def _read(self, repo: str, source: str, obj: RemoteObject | None) -> Version:
        if source.startswith("pin:"):
            mid = source[4:]
            key, etag, size = history_key(self.prefix, repo, mid), "", 0
        else:
            mid, key, etag, size = None, obj.key, obj.etag, obj.size
            if size > MAX_MANIFEST_BYTES:
                raise Refused(f"it is {size:,} bytes, over the limit of {MAX_MANIFEST_BYTES:,}")
        chunks: list[bytes] = []
        try:
            self.bucket.read(key, etag, size, chunks.append)
        except Exception as exc:
            if mid is not None and _missing(exc):
                raise Refused(f"version {mid} is not in its history ({key} does not exist); choose one of the "
                              f"ids under {self.prefix}{STATE_DIR}/history/{repo}/") from None
            raise
        return Version(source, parse_manifest(b"".join(chunks), repo, mid))

    def _key(self, repo: str, source: str) -> str:
        if source.startswith("pin:"):
            return history_key(self.prefix, repo, source[4:])
        return manifest_key(self.prefix, repo)

    def _top(self, key: str) -> str:
        return key[len(self.prefix):].partition("/")[0] if key.startswith(self.prefix) else ""

    def _leave_manifest_mode(self) -> None:
        self.manifest_mode = False
        for repo in list(self.applied):
            self._remember(repo, None)
        self.plain = self._names = None
        self._refused.clear()

    # -- after the pass --------------------------------------------------------------------------

    def settle(self, p: Plan, errors: Sequence[tuple[str, str]], *, interrupted: bool) -> None:
        """Record what the pass brought in: each repo whose files all arrived is applied."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        self._listed = pending.listed
        if interrupted:
            return
        if pending.rescan:
            self._last_rescan = self.clock()
            self._rescan_asked = False
        self.plain = pending.plain
        self._names = pending.names
        for repo in [r for r in self.applied if r not in pending.names]:
            self._remember(repo, None)
        fetch_failed = any(kind == "fetch" for _, kind in errors)
        for repo, version in pending.versions.items():
            folder = f"{self.prefix}{repo}/"
            touched = [k for k, _ in errors if k.startswith(folder) or k.startswith(repo + "/")]
            deletes = any(rel.startswith(repo + "/") for rel in (*p.deletes, *p.displaced))
            if touched or p.delete_blocked or (deletes and fetch_failed):
                continue  # the next pass reads its manifest again and finishes the work
            self._remember(repo, version)


def _missing(exc: BaseException) -> bool:
    from botocore.exceptions import ClientError

    return isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404")


def check_pins(pairs: Iterable[str]) -> dict[str, str]:
    """Parse `--pin REPO=MANIFEST_ID` values; raises ValueError naming the bad one."""
    pins: dict[str, str] = {}
    for text in pairs:
        repo, sep, mid = text.partition("=")
        if not sep:
            raise ValueError(f"--pin {text!r}: use REPO=MANIFEST_ID, e.g. team-dags=3f0c9a1b2d4e5f60")
        check_repo_name(repo.strip())
        check_manifest_id(mid.strip())
        if repo.strip() in pins and pins[repo.strip()] != mid.strip():
            raise ValueError(f"--pin: repo {repo.strip()!r} is pinned twice, to {pins[repo.strip()]} and {mid.strip()}")
        pins[repo.strip()] = mid.strip()
    return pins

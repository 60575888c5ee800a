"""Synthetic DAG trees: presets, file layout and bytes, all reproducible from a seed (pure)."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import random
import string
from dataclasses import dataclass
from typing import Iterable

KIB = 1 << 10
MIB = 1 << 20


@dataclass(frozen=True)
class Preset:
    """How many files a tree has, their size range (log-normal) and how many large files join them."""

    name: str
    files: int
    large_files: int = 0
    large_size: int = 16 * MIB
    min_size: int = 205  # 0.2 KiB
    max_size: int = 60 * KIB
    repos: int = 20

    @property
    def mu(self) -> float:
        """Log-space centre: the geometric mean of the bounds, so the median sits mid-range."""
        return (math.log(self.min_size) + math.log(self.max_size)) / 2

    @property
    def sigma(self) -> float:
        """Log-space spread: the bounds sit at ±3σ, so truncation drops only 0.3 % of draws."""
        return (math.log(self.max_size) - math.log(self.min_size)) / 6

    def without_large_files(self) -> "Preset":
        return dataclasses.replace(self, name=f"{self.name}-small-only", large_files=0)


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("tiny", 50, repos=3),
    Preset("small", 1_000, repos=10),
    Preset("large", 10_000, large_files=8),
    Preset("xlarge", 100_000, large_files=8),
    # DAG-like files only, for memory per object and daemon polls: the small files of large and xlarge.
    Preset("dags10k", 10_000),
    Preset("dags100k", 100_000),
)}


@dataclass(frozen=True, slots=True)
class SeedFile:
    """One file of the tree: its path below the prefix, its size, and which edit of it this is."""

    rel: str
    size: int
    version: int = 0


@dataclass(frozen=True, slots=True)
class Expect:
    """What a correct destination holds at one path."""

    size: int
    md5: str


@dataclass(frozen=True)
class Mutation:
    """One incremental change: new versions of existing files, new files, and removed paths."""

    overwritten: tuple[SeedFile, ...]
    added: tuple[SeedFile, ...]
    deleted: tuple[str, ...]

    @property
    def uploads(self) -> tuple[SeedFile, ...]:
        return self.overwritten + self.added


_DOMAINS = ("billing", "marketing", "ml", "etl", "reporting", "ingest", "finance", "ops")
_SUBS = ("daily", "hourly", "backfill", "sensors", "exports")
_LEAVES = ("v1", "v2", "legacy")
_STEMS = ("load", "transform", "export", "sync", "report", "train", "score", "check", "notify", "archive")
_EXTENSIONS = ((".py", 80), (".sql", 8), (".yaml", 5), (".json", 3), (".md", 2), (".txt", 2))
_ALPHABET = (string.ascii_letters + string.digits + " \n_()=.:,#'\"").encode()
_PRINTABLE = bytes.maketrans(bytes(range(256)), bytes(_ALPHABET[i % len(_ALPHABET)] for i in range(256)))


def repo_dirs(repo: str, rng: random.Random) -> tuple[str, ...]:
    """The folders of one repository: dags nested up to four levels, plugins and SQL includes."""
    dirs = [f"{repo}/dags"]
    for domain in rng.sample(_DOMAINS, 4):
        dirs.append(f"{repo}/dags/{domain}")
        for sub in rng.sample(_SUBS, 2):
            dirs.append(f"{repo}/dags/{domain}/{sub}")
            dirs.append(f"{repo}/dags/{domain}/{sub}/{rng.choice(_LEAVES)}")
        dirs.append(f"{repo}/include/sql/{domain}")
    dirs.append(f"{repo}/plugins/{rng.choice(_STEMS)}_hooks")
    return tuple(dirs)


def draw_size(p: Preset, rng: random.Random) -> int:
    """A log-normal size truncated to [min_size, max_size] by redrawing."""
    while True:
        size = round(rng.lognormvariate(p.mu, p.sigma))
        if p.min_size <= size <= p.max_size:
            return size


def build_tree(p: Preset, seed: int) -> tuple[SeedFile, ...]:
    """The preset's files for this seed, small files first, then the large ones."""
    rng = random.Random(f"tree:{seed}")
    repos = [f"repo-{i:02d}" for i in range(p.repos)]
    dirs = {repo: repo_dirs(repo, rng) for repo in repos}
    exts, weights = zip(*_EXTENSIONS)
    files = []
    for i in range(p.files):
        folder = rng.choice(dirs[rng.choice(repos)])
        name = f"{rng.choice(_STEMS)}_{i:06d}{rng.choices(exts, weights)[0]}"
        files.append(SeedFile(f"{folder}/{name}", draw_size(p, rng)))
    for i in range(p.large_files):
        files.append(SeedFile(f"{repos[i % len(repos)]}/include/models/model_{i:02d}.bin", p.large_size))
    return tuple(files)


def body(f: SeedFile, seed: int) -> bytes:
    """The bytes of one file: printable, unique to (seed, path, version), same on every call."""
    digest = hashlib.blake2b(f"{seed}\0{f.rel}\0{f.version}".encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big")).randbytes(f.size).translate(_PRINTABLE)


def expectations(files: Iterable[SeedFile], seed: int) -> dict[str, Expect]:
    """Size and MD5 of every file, keyed by relative path."""
    return {f.rel: Expect(f.size, hashlib.md5(body(f, seed)).hexdigest()) for f in files}


def mutate(files: tuple[SeedFile, ...], p: Preset, seed: int, overwrite: float = 0.01, add: float = 0.005,
           delete: float = 0.005) -> Mutation:
    """Pick an edit of the small files: a share overwritten (new size), added and deleted, disjoint."""
    rng = random.Random(f"mutate:{seed}")
    small = [f for f in files if f.size <= p.max_size]
    n_over, n_add, n_del = (max(1, round(len(small) * share)) for share in (overwrite, add, delete))
    picked = rng.sample(small, n_over + n_del)
    overwritten = []
    for f in picked[:n_over]:
        size = draw_size(p, rng)
        if size == f.size:
            size = size - 1 if size == p.max_size else size + 1
        overwritten.append(SeedFile(f.rel, size, f.version + 1))
    taken = {f.rel for f in files}
    added = []
    for i in range(n_add):
        folder = rng.choice(small).rel.rpartition("/")[0]
        rel = f"{folder}/added_{i:06d}.py"
        if rel not in taken:
            taken.add(rel)
            added.append(SeedFile(rel, draw_size(p, rng)))
    return Mutation(tuple(overwritten), tuple(added), tuple(sorted(f.rel for f in picked[n_over:])))


def apply(files: tuple[SeedFile, ...], m: Mutation) -> tuple[SeedFile, ...]:
    """The tree after the mutation."""
    replaced = {f.rel: f for f in m.overwritten}
    gone = set(m.deleted)
    kept = tuple(replaced.get(f.rel, f) for f in files if f.rel not in gone)
    return kept + m.added


def total_bytes(files: Iterable[SeedFile]) -> int:
    return sum(f.size for f in files)

"""Check that a destination folder holds exactly the bucket's tree after a run."""

from __future__ import annotations

import hashlib
import os
import random
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from objsync.bench.presets import Expect

FULL_LIMIT = 20_000  # up to this many files every byte is hashed; above it, a sample
SAMPLE_FILES = 1_000
MAX_PROBLEMS = 20


@dataclass(frozen=True)
class Check:
    """The verdict on one destination: how it was checked and what was wrong."""

    ok: bool
    mode: str  # "full": every file hashed; "sample:N": every size checked, N files hashed
    hashed: int
    problems: tuple[str, ...] = ()


def scan(root: Path, ignore: tuple[str, ...] = ()) -> tuple[dict[str, int], list[str]]:
    """Size of every regular file below root by relative path, skipping top-level names in `ignore`."""
    sizes: dict[str, int] = {}
    odd: list[str] = []
    for folder, dirs, names in os.walk(root):
        rel_folder = os.path.relpath(folder, root)
        prefix = "" if rel_folder == "." else rel_folder.replace(os.sep, "/") + "/"
        if not prefix:
            dirs[:] = [d for d in dirs if d not in ignore]
            names = [n for n in names if n not in ignore]
        for name in names:
            st = os.lstat(os.path.join(folder, name))
            if stat.S_ISREG(st.st_mode):
                sizes[prefix + name] = st.st_size
            else:
                odd.append(f"not a regular file: {prefix + name}")
    return sizes, odd


def pick_hashed(model: Mapping[str, Expect], mode: str, seed: int) -> tuple[str, list[str]]:
    """Which files to hash: all of them for full mode, else a seeded sample plus every file over 1 MiB."""
    rels = sorted(model)
    if mode == "full" or (mode == "auto" and len(rels) <= FULL_LIMIT):
        return "full", rels
    big = [r for r in rels if model[r].size > 1 << 20]
    sample = random.Random(f"verify:{seed}").sample(rels, min(SAMPLE_FILES, len(rels)))
    chosen = sorted(set(sample) | set(big))
    return f"sample:{len(chosen)}", chosen


def md5_file(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def check_dest(root: Path, model: Mapping[str, Expect], *, ignore: tuple[str, ...] = (), mode: str = "auto",
               seed: int = 0) -> Check:
    """Compare root with the model: same paths, same sizes, and the same MD5 for the hashed files."""
    sizes, problems = scan(root, ignore)
    problems += [f"missing: {rel}" for rel in sorted(model.keys() - sizes.keys())]
    problems += [f"unexpected: {rel}" for rel in sorted(sizes.keys() - model.keys())]
    for rel in sorted(model.keys() & sizes.keys()):
        if sizes[rel] != model[rel].size:
            problems.append(f"{rel}: {sizes[rel]} bytes, expected {model[rel].size}")
    used_mode, hashed = pick_hashed(model, mode, seed)
    for rel in hashed:
        if rel in sizes and sizes[rel] == model[rel].size and md5_file(root / rel) != model[rel].md5:
            problems.append(f"{rel}: content differs (MD5)")
    if len(problems) > MAX_PROBLEMS:
        problems = problems[:MAX_PROBLEMS] + [f"... and {len(problems) - MAX_PROBLEMS} more"]
    return Check(ok=not problems, mode=used_mode, hashed=len(hashed), problems=tuple(problems))

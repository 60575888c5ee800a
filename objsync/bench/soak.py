"""The soak test's pure pieces: each generation's files, judging a read, latencies, growth and leftovers."""

from __future__ import annotations

import bisect
import math
import os
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from objsync.paths import STATE_DIR
from objsync.pull import store

DAG_FILE = "dag.py"
STATIC_FILE = "sql/static.sql"
_GEN = re.compile(rb"^GEN = (\d+)$", re.M)
_END = re.compile(rb"^GEN_END = (\d+)$", re.M)


def helper_module(repo: str) -> str:
    return f"{repo}_helper"


def _pad(repo: str, gen: int) -> str:
    # A triple-quoted block between the two marks: a file cut short fails to parse or lacks GEN_END.
    lines = "\n".join(f"{repo} generation {gen} line {i:02d} " + "." * 40 for i in range(40))
    return f'PAD = """\n{lines}\n"""\n'


def render(repo: str, gen: int) -> dict[str, bytes]:
    """The `workflow/` folder of `repo` at generation `gen`: a DAG, the helper it imports, a file that never changes."""
    helper = helper_module(repo)
    dag = (f"GEN = {gen}\nimport {helper} as helper\n\nDAG_ID = 'soak_{repo}'\nHELPER_GEN = helper.GEN\n"
           f"{_pad(repo, gen)}GEN_END = {gen}\n")
    lib = f"GEN = {gen}\n\n\ndef version():\n    return GEN\n\n\n{_pad(repo, gen)}GEN_END = {gen}\n"
    return {DAG_FILE: dag.encode(), f"{helper}.py": lib.encode(), STATIC_FILE: b"select 1;\n"}


def file_gens(data: bytes) -> list[int | None]:
    """[GEN, GEN_END] as written at the top and the bottom of a file; None where a mark is missing."""
    return [int(m.group(1)) if m else None for m in (_GEN.search(data), _END.search(data))]


def judge(seen: Mapping[str, object]) -> tuple[str, int | None]:
    """'ok' with the generation, 'mixed' (DAG and helper of two generations) or 'partial' (an error, a cut file)."""
    if "error" in seen:
        return "partial", None
    dag, helper = seen.get("dag"), seen.get("helper")
    if not (isinstance(dag, (list, tuple)) and isinstance(helper, (list, tuple))):
        return "partial", None
    if None in dag or None in helper or dag[0] != dag[1] or helper[0] != helper[1]:
        return "partial", None
    if dag[0] != helper[0]:
        return "mixed", None
    return "ok", int(dag[0])


def at_a_swap(seen: Mapping[str, object], shown: Sequence[int]) -> bool:
    """True for a mixed read of a DAG from one tree and its helper from the very next tree the folder showed:
    the link swapped between the two opens, which a reader resolving each file through it allows."""
    dag, helper = seen.get("dag"), seen.get("helper")
    if judge(seen)[0] != "mixed" or not isinstance(dag, (list, tuple)) or not isinstance(helper, (list, tuple)):
        return False
    return any((a, b) == (dag[0], helper[0]) for a, b in zip(shown, shown[1:]))


def percentile(values: Iterable[float], q: float) -> float | None:
    """The q-quantile (0..1), interpolated between the nearest ranks; None without values."""
    v = sorted(values)
    if not v:
        return None
    pos = (len(v) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def visibility(pushes: Sequence[tuple[int, float]], shown: Sequence[tuple[float, int]]) -> list[float | None]:
    """For each push (generation, done at), seconds until the folder showed it or a later one; None if never.
    `shown` is (time, generation) of each tree the folder showed, in time order."""
    highest: list[int] = []
    for _, gen in shown:
        highest.append(max(gen, highest[-1]) if highest else gen)
    out: list[float | None] = []
    for gen, done in pushes:
        i = bisect.bisect_left(highest, gen)
        out.append(shown[i][0] - done if i < len(shown) else None)
    return out


def near_a_kill(done: float, lag: float, kills: Sequence[float], before: float = 5.0) -> bool:
    """True when the daemon was killed while a push waited to be shown, or `before` s ahead of it (still starting)."""
    return any(done - before <= k <= done + lag for k in kills)


@dataclass(frozen=True)
class Sample:
    """One look at the daemon: when, which life (restart) of it, how long it had lived, RSS and open fds."""

    t: float
    life: int
    age: float
    rss: int
    fds: int


@dataclass(frozen=True)
class Growth:
    """A measure early on (after warm-up) and at the end, and the largest rise within one life."""

    warm: float
    end: float
    growth: float
    worst_life: float | None
    lives: int


def growth(samples: Sequence[Sample], measure: str, warmup: float, k: int = 10, share: float = 0.2) -> Growth | None:
    """Median of the first samples past warm-up (the first `share` of them, at least k) against the last as many.
    Also the largest rise within one life, first k against last k; None when fewer than k samples were taken."""
    ok = [s for s in samples if s.age >= warmup]
    if len(ok) < k:
        return None
    values = [float(getattr(s, measure)) for s in ok]
    n = max(k, int(len(values) * share))
    warm, end = statistics.median(values[:n]), statistics.median(values[-n:])
    per_life: dict[int, list[float]] = {}
    for s, v in zip(ok, values):
        per_life.setdefault(s.life, []).append(v)
    rises = [statistics.median(v[-k:]) - statistics.median(v[:k]) for v in per_life.values() if len(v) >= 2 * k]
    return Growth(warm, end, end - warm, max(rises) if rises else None, len(per_life))


@dataclass
class Leftovers:
    """What is left in the state folder: temp files, and per repo its current tree, recent and stale others."""

    tmp: list[str] = field(default_factory=list)
    current: dict[str, str | None] = field(default_factory=dict)
    recent: dict[str, list[str]] = field(default_factory=dict)
    stale: dict[str, list[str]] = field(default_factory=dict)

    @property
    def bad(self) -> int:
        return len(self.tmp) + sum(len(v) for v in self.stale.values())


def leftovers(dest: Path, keep: float, now: float) -> Leftovers:
    """Temp files, and trees other than the current ones that were not retired within `keep` seconds of `now`."""
    out = Leftovers()
    tmp = dest / STATE_DIR / "tmp"
    out.tmp = sorted(os.listdir(tmp)) if tmp.is_dir() else []
    root = dest / store.STORE
    for repo in sorted(os.listdir(root)) if root.is_dir() else []:
        names = set(os.listdir(root / repo))
        shown = store.current(str(dest), repo)
        out.current[repo] = shown
        recent, stale = [], []
        for name in sorted(names - {shown}):
            if name.endswith(store.RETIRED) and name[:-len(store.RETIRED)] in names:
                continue
            marker = root / repo / (name + store.RETIRED)
            young = marker.exists() and now - marker.lstat().st_mtime < keep and not name.startswith(".")
            (recent if young else stale).append(name)
        out.recent[repo], out.stale[repo] = recent, stale
    return out


def folder_files(dest: Path) -> dict[str, bytes]:
    """Every file a reader sees in the folder (through the repos' links), objsync's own folder left out."""
    files: dict[str, bytes] = {}
    for top, dirs, names in os.walk(dest, followlinks=True):
        rel = Path(top).relative_to(dest)
        dirs[:] = [d for d in dirs if d != "__pycache__" and (rel.parts or d != STATE_DIR)]
        for name in names:
            files[(rel / name).as_posix()] = (Path(top) / name).read_bytes()
    return files

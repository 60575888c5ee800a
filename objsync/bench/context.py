"""Facts about the machine and the code under test, recorded next to the numbers."""

from __future__ import annotations

import compileall
import contextlib
import hashlib
import os
import platform
import subprocess
from pathlib import Path
from typing import Sequence

import psutil


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine() -> str:
    """One line: CPUs, memory, OS and Python."""
    mem = psutil.virtual_memory().total / 2**30
    return (f"{os.cpu_count()} CPUs ({cpu_model()}), {mem:.0f} GiB RAM, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


def git_revision(path: Path) -> str:
    """`git describe --always --dirty` of the checkout holding `path`, or 'not a git checkout'."""
    try:
        out = subprocess.run(["git", "-C", str(path), "describe", "--always", "--dirty"], capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "not a git checkout"
    return out.stdout.strip() if out.returncode == 0 else "not a git checkout"


def source_digest(package: Path) -> str:
    """SHA-256 of the package's Python sources, to tell whether the code under test changed mid-run."""
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0")
        with contextlib.suppress(OSError):
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def compile_package(package: Path) -> str:
    """Write the package's bytecode, as installing a wheel does, so no run pays for compiling its sources.

    Under PYTHONDONTWRITEBYTECODE, or from a fresh checkout, every run of objsync would otherwise compile
    each module it imports again: a cost an installed objsync never has."""
    ok = compileall.compile_dir(str(package), quiet=1)
    return "compiled before the runs, as a wheel install has it" if ok else "could not all be compiled: runs compile"


def load_summary(load1: Sequence[float], others_cpu: float, wall: float) -> dict[str, float | None]:
    """Range of the 1-minute load average before the runs, and how many CPUs others kept busy meanwhile."""
    return {"min": min(load1, default=None), "max": max(load1, default=None),
            "others_cores": others_cpu / wall if wall else None}


def busy_seconds() -> float:
    """CPU seconds this machine has spent on anything but idling, all CPUs together."""
    t = psutil.cpu_times()
    # guest time is already inside user time; steal is time the hypervisor gave to someone else.
    idle = ("idle", "iowait", "guest", "guest_nice", "steal")
    return sum(getattr(t, f) for f in t._fields if f not in idle)


def own_seconds() -> float:
    """CPU seconds of this process (the harness itself, not its children)."""
    t = psutil.Process().cpu_times()
    return t.user + t.system

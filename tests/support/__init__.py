"""Helpers shared by the tests: here, running the real CLI and comparing trees (integration tests).

`memory_bucket` is an S3 bucket in memory and `pulls` a pull wired on it, for the unit tests of the
pull's orchestration. pytest puts tests/ on sys.path (the folder of tests/conftest.py), so tests in
tests/ and tests/unit/ alike import this package as `support`.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from objsync.paths import STATE_DIR


@dataclass
class Run:
    rc: int
    out: str
    err: str

    @property
    def summary(self) -> dict:
        return json.loads(self.out.strip().splitlines()[-1])


def objsync(*args: str, env: dict[str, str], timeout: float = 120) -> Run:
    """Run `python -m objsync ARGS` with the test's AWS environment."""
    full_env = dict(os.environ) | env
    full_env.pop("AWS_PROFILE", None)
    proc = subprocess.run([sys.executable, "-m", "objsync", *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout)
    return Run(proc.returncode, proc.stdout, proc.stderr)


def pull(src: str, dest: Path, *extra: str, env: dict[str, str]) -> Run:
    return objsync("pull", "--once", "--json", *extra, src, str(dest), env=env)


def put(client, bucket: str, objects: dict[str, bytes]) -> None:
    for key, body in objects.items():
        client.put_object(Bucket=bucket, Key=key, Body=body)


def tree(root: Path) -> dict[str, bytes]:
    """Every file below root (outside objsync's own folder) by relative path."""
    out = {}
    for path in sorted(Path(root).rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel == STATE_DIR or rel.startswith(STATE_DIR + "/") or not path.is_file():
            continue
        out[rel] = path.read_bytes()
    return out


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()

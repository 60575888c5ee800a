"""Where a push, promote or rollback goes (one environment's folder of one repo) and what it reports."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

from objsync.layout import history_key, manifest_key, pack_key, repo_prefix
from objsync.push.plan import PushPlan
from objsync.s3.config import Location, RemoteConfig


@dataclass(frozen=True)
class Target:
    """One environment's folder for one repo, and how to reach it."""

    env: str
    location: Location
    remote: RemoteConfig
    repo: str

    @property
    def bucket(self) -> str:
        return self.location.bucket

    @property
    def folder(self) -> str:
        return repo_prefix(self.location.prefix, self.repo)

    @property
    def manifest_key(self) -> str:
        return manifest_key(self.location.prefix, self.repo)

    def history_key(self, manifest_id: str) -> str:
        return history_key(self.location.prefix, self.repo, manifest_id)

    def pack_key(self, manifest_id: str) -> str:
        return pack_key(self.location.prefix, self.repo, manifest_id)

    def url(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{key}"


@dataclass(frozen=True)
class Report:
    """The outcome of one push, promote or rollback, as `--json` prints it."""

    command: str
    target: Target
    transferred: int = 0
    unchanged: int = 0
    deleted: int = 0
    bytes: int = 0
    seconds: float = 0.0
    manifest_id: str | None = None
    manifest: str = "not written"  # "written", "unchanged", "planned" (dry run) or "not written"
    errors: tuple[tuple[str, str], ...] = ()
    plan: PushPlan | None = field(default=None, compare=False, repr=False)
    checked: int = 0  # rollback: objects whose state was checked; `unchanged` of them were as published

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict:
        return {
            "env": self.target.env, "repo": self.target.repo, "destination": self.target.url(self.target.folder),
            "copied" if self.command == "promote" else "uploaded": self.transferred,
            "unchanged": self.unchanged, "deleted": self.deleted, "bytes": self.bytes,
            "seconds": round(self.seconds, 3), "manifest_id": self.manifest_id, "manifest": self.manifest,
            "errors": [{"key": k, "error": e} for k, e in self.errors],
        } | ({"checked": self.checked} if self.command == "rollback" else {})


def report(command: str, target: Target, started: float, p: PushPlan | None = None, *, transferred: int = 0,
           deleted: int = 0, nbytes: int = 0, manifest_id: str | None = None, manifest: str = "not written",
           errors: Sequence[tuple[str, str]] = ()) -> Report:
    """The Report of a command that began at `started` (time.monotonic()) and ends now."""
    return Report(command, target, transferred, len(p.unchanged) if p else 0, deleted, nbytes,
                  time.monotonic() - started, manifest_id, manifest, tuple(errors), p)

"""The pull configuration: one frozen record built by the CLI from flags, environment and defaults."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from objsync.model import Fsync
from objsync.paths import normalize_prefix
from objsync.pull.decide import Rules
from objsync.pull.pool import PoolConfig
from objsync.s3.config import Location, RemoteConfig
from objsync.signing import VerifyKey

# Manifest mode stats every local file this often (a stat of 100,000 files costs ~0.65 s of CPU,
# ~11 ms a 5 s poll on average), and --atomic keeps a replaced tree this long for its readers.
DEFAULT_RESCAN = 300.0
DEFAULT_KEEP = 300.0


@dataclass(frozen=True)
class WriteOptions:
    """How workers write: temp folder, bucket, file mode and fsync policy (each job names its own root)."""

    tmp: str  # folder for temp files, on the same filesystem as every output root
    bucket: str
    file_mode: int = 0o664
    fsync: Fsync = Fsync.BATCH


@dataclass(frozen=True)
class PullConfig:
    """Everything one `objsync pull` needs; nothing below the CLI reads argv or the environment."""

    source: Location
    dest: Path
    remote: RemoteConfig
    rules: Rules
    pool: PoolConfig
    file_mode: int = 0o664
    fsync: Fsync = Fsync.BATCH
    once: bool = False
    dry_run: bool = False
    pins: tuple[tuple[str, str], ...] = ()  # (repo, manifest id): versions held with --pin
    rescan_every: float = DEFAULT_RESCAN  # seconds between looks at every local file (and top folder) while quiet
    use_manifests: bool = True  # False: LIST the whole prefix on every pass, whatever manifests exist
    atomic: bool = False  # publish each top-level folder as a whole new tree, behind a symlink
    keep_snapshots: float = DEFAULT_KEEP  # seconds a replaced tree stays for the processes still reading it
    verify_keys: tuple[VerifyKey, ...] = ()  # given: only versions signed by one of these are mirrored
    allow_unsigned_folders: bool = False  # with verify_keys: mirror names without a manifest unchecked

    @property
    def prefix(self) -> str:
        return normalize_prefix(self.source.prefix)

    @property
    def identity(self) -> str:
        """What the cache belongs to: a cache made for another source is not trusted."""
        # Turning verification on forgets the cache, so that files already in place are hashed once against
        # the signed SHA-256s instead of being trusted.
        signed = "|signed" if self.verify_keys else ""
        return f"{self.remote.effective_endpoint() or 'aws'}|{self.source.bucket}|{self.prefix}{signed}"


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str) -> float:
    """Parse '500ms', '5s', '1m', '1h' or plain seconds into seconds."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration; use e.g. 500ms, 5s, 1m or plain seconds")
    value = float(match.group(1)) * _UNITS[match.group(2)]
    if value <= 0:
        raise ValueError(f"{text!r} must be more than zero")
    return value


def parse_file_mode(text: str) -> int:
    """Parse an octal file mode such as 0664 or 644."""
    try:
        mode = int(text, 8)
    except ValueError:
        raise ValueError(f"{text!r} is not an octal file mode such as 0664") from None
    if not 0 <= mode <= 0o7777:
        raise ValueError(f"{text!r} is out of range for a file mode")
    return mode

"""The daemon's configuration: one frozen record the CLI builds from flags and environment."""

from __future__ import annotations

from dataclasses import dataclass, field

from objsync.daemon.hooks import Hooks


@dataclass(frozen=True)
class DaemonConfig:
    """Everything daemon mode needs beyond the pull itself; nothing below the CLI reads argv or the environment."""

    interval: float = 5.0  # seconds between the starts of two passes
    max_failures: int = 3  # consecutive failed passes before /health turns 500; negative: never
    status_addr: str | None = ":8087"  # where /health and /metrics are served; None: nowhere
    hooks: Hooks = field(default_factory=Hooks)
    sentry_dsn: str | None = None


def parse_addr(addr: str) -> tuple[str, int]:
    """Parse ':8087', '0.0.0.0:8087', '127.0.0.1:0' or '[::1]:8087' into (host, port)."""
    host, sep, port = addr.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise ValueError(f"{addr!r} is not an address such as :8087 or 127.0.0.1:8087 (or 'off')")
    return host.strip("[]") or "0.0.0.0", int(port)

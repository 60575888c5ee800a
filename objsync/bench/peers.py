"""The tools under test: objsync and the peers found on this machine, and how each one is invoked."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

KINDS = ("objsync", "s5cmd", "aws", "rclone", "objinsync")
PEERS = KINDS[1:]
BASELINE = "objsync-base"
BASELINE_VAR = "OBJSYNC_BASELINE_BIN"
RCLONE_REMOTE = "OBJSYNCBENCH"
VARIANT_SEP = "@"
# Variables that would leak a different identity into a tool pointed at the benchmark server.
_FOREIGN_AWS = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_PROFILE")


@dataclass(frozen=True)
class Tool:
    """One contender: a label for the tables, its kind, how to start it, extra flags and variables."""

    name: str
    kind: str
    exe: tuple[str, ...]
    extra: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    concurrency: int | None = None  # set on a sweep's variant; None: the tool's own default

    @property
    def ignore(self) -> tuple[str, ...]:
        """Top-level names in the destination that are the tool's own state, not mirrored files."""
        return (".objsync",) if self.kind == "objsync" else ()

    @property
    def has_daemon(self) -> bool:
        return self.kind == "objsync"


def variant_of(name: str) -> tuple[str, int | None]:
    """('s5cmd', 64) for a sweep's variant 's5cmd@64'; (name, None) for a tool at its defaults."""
    family, sep, n = name.rpartition(VARIANT_SEP)
    return (family, int(n)) if sep and n.isdigit() else (name, None)


def objsync_tool(extra: tuple[str, ...] = (), name: str = "objsync") -> Tool:
    """The objsync of this checkout, run by the harness's own Python."""
    return Tool(name, "objsync", (sys.executable, "-m", "objsync"), extra)


def baseline_tool(exe: str, extra: tuple[str, ...] = ()) -> Tool:
    """Another build of objsync, run from its own executable: same flags, same checks, its own row."""
    return Tool(BASELINE, "objsync", (exe,), extra)


def find_baseline(path: str | None, env: Mapping[str, str]) -> tuple[str | None, str]:
    """The baseline executable from --baseline-bin or OBJSYNC_BASELINE_BIN, or None and why not."""
    exe, source = (path, "--baseline-bin") if path else (env.get(BASELINE_VAR), BASELINE_VAR)
    if not exe:
        return None, f"neither --baseline-bin nor {BASELINE_VAR} is set"
    if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
        return None, f"{source}={exe} is not an executable file"
    return os.path.abspath(exe), ""


def sync_command(tool: Tool, uri: str, endpoint: str | None, dest: Path) -> list[str]:
    """The one-shot sync of s3://bucket/prefix into dest, as a user would type it."""
    folder = uri.rstrip("/") + "/"
    if tool.kind == "objsync":
        return [*tool.exe, "pull", "--once", *_opt("--endpoint-url", endpoint), *tool.extra, uri, str(dest)]
    if tool.kind == "s5cmd":
        return [*tool.exe, *_opt("--endpoint-url", endpoint), "sync", "--delete", *tool.extra,
                folder + "*", f"{dest}/"]
    if tool.kind == "aws":
        return [*tool.exe, "s3", "sync", "--delete", *_opt("--endpoint-url", endpoint), "--only-show-errors",
                *tool.extra, folder, str(dest)]
    if tool.kind == "rclone":
        bucket_path = uri.removeprefix("s3://").rstrip("/")
        return [*tool.exe, "sync", "--fast-list", *tool.extra, f"{RCLONE_REMOTE.lower()}:{bucket_path}", str(dest)]
    if tool.kind == "objinsync":
        ssl = ["--disable-ssl"] if endpoint and endpoint.startswith("http://") else []
        return [*tool.exe, "pull", "--once", *_opt("--s3-endpoint", endpoint), *ssl, *tool.extra, uri, str(dest)]
    raise ValueError(f"unknown tool kind {tool.kind!r}")


def daemon_command(tool: Tool, uri: str, endpoint: str | None, dest: Path, interval: str,
                   status_addr: str) -> list[str]:
    """objsync (or objinsync) as a long-running puller with its status page on status_addr."""
    if tool.kind == "objinsync":
        ssl = ["--disable-ssl"] if endpoint and endpoint.startswith("http://") else []
        return [*tool.exe, "pull", "--interval", interval, "--status-addr", status_addr,
                *_opt("--s3-endpoint", endpoint), *ssl, *tool.extra, uri, str(dest)]
    if not tool.has_daemon:
        raise ValueError(f"{tool.name} has no daemon mode")
    return [*tool.exe, "pull", "--interval", interval, "--status-addr", status_addr,
            *_opt("--endpoint-url", endpoint), *tool.extra, uri, str(dest)]


def _opt(flag: str, value: str | None) -> list[str]:
    return [flag, value] if value else []


def tool_env(tool: Tool, base: Mapping[str, str], target_env: Mapping[str, str],
             endpoint: str | None) -> dict[str, str]:
    """The environment for one tool: the caller's, the target's credentials, and per-tool fixes."""
    env = dict(base)
    if target_env:
        for name in _FOREIGN_AWS:
            env.pop(name, None)
    env.update(target_env)
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        if endpoint and name in env:
            env[name] = endpoint  # a tool that reads it gets the endpoint of its flags (the latency proxy, say)
    if tool.exe[0] != sys.executable:
        # Another program's Python (a baseline build, the aws CLI) would import this checkout's modules.
        env.pop("PYTHONPATH", None)
    env.update(tool.env)
    if tool.kind == "rclone":
        env.pop("AWS_CA_BUNDLE", None)  # rclone refuses to start when it is set
        prefix = f"RCLONE_CONFIG_{RCLONE_REMOTE}_"
        env.update({prefix + "TYPE": "s3", prefix + "ENV_AUTH": "true",
                    prefix + "PROVIDER": "Other" if endpoint else "AWS",
                    prefix + "REGION": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"})
        if endpoint:
            env.update({prefix + "ENDPOINT": endpoint, prefix + "FORCE_PATH_STYLE": "true"})
    return env


def find_exe(name: str, env: Mapping[str, str]) -> str | None:
    """A program next to this Python first (a venv), then on PATH; pyenv shims resolved to the real file."""
    local = Path(sys.executable).parent / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    found = shutil.which(name, path=env.get("PATH"))
    if found and "/shims/" in found and shutil.which("pyenv", path=env.get("PATH")):
        # A shim re-enters pyenv on every call (about 0.4 s here), which would be billed to the peer.
        real = subprocess.run(["pyenv", "which", name], capture_output=True, text=True, env=dict(env))
        if real.returncode == 0 and os.access(real.stdout.strip(), os.X_OK):
            return real.stdout.strip()
    return found


def find_peers(env: Mapping[str, str], wanted: tuple[str, ...] = PEERS) -> tuple[list[Tool], dict[str, str]]:
    """The peers present here, and for each missing one, why it is missing."""
    found, missing = [], {}
    for kind in wanted:
        if kind == "objinsync":
            exe = env.get("OBJINSYNC_BIN")
            if not exe:
                missing[kind] = "OBJINSYNC_BIN is not set"
                continue
            if not os.access(exe, os.X_OK):
                missing[kind] = f"OBJINSYNC_BIN={exe} is not an executable file"
                continue
        else:
            exe = find_exe(kind, env)
            if exe is None:
                missing[kind] = f"`{kind}` not found next to {sys.executable} or on PATH"
                continue
        found.append(Tool(kind, kind, (exe,)))
    return found, missing


def version(tool: Tool, env: Mapping[str, str]) -> str:
    """The tool's version line, as the tool itself reports it, or 'unknown'."""
    if tool.kind == "objinsync":  # it has no version flag: name the binary instead
        return f"objinsync ({tool.exe[0]})"
    args = {"s5cmd": ["version"], "rclone": ["version"]}.get(tool.kind, ["--version"])
    try:
        out = subprocess.run([*tool.exe, *args], capture_output=True, text=True, timeout=30, env=dict(env))
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    lines = (out.stdout + out.stderr).strip().splitlines()
    return lines[0].strip() if lines else "unknown"

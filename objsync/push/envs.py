"""Push targets: environments from objsync.toml or pyproject.toml plus CI overrides, repo name and commit."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

from objsync.layout import check_env_name, check_repo_name
from objsync.s3.config import Location

CONFIG_FILE = "objsync.toml"
PYPROJECT = "pyproject.toml"
DEFAULT_SOURCE = "workflow"
ENV_PREFIX = "OBJSYNC_ENV_"
# Checked in this order; the second item turns the variable's value into a repo name.
REPO_VARS: tuple[tuple[str, Callable[[str], str]], ...] = (
    ("GITHUB_REPOSITORY", lambda v: v.rpartition("/")[2]),  # "owner/name"
    ("CI_PROJECT_NAME", str),  # GitLab
    ("BITBUCKET_REPO_SLUG", str),
    ("CIRCLE_PROJECT_REPONAME", str),
    ("BUILDKITE_PIPELINE_SLUG", str),
)
COMMIT_VARS = ("GITHUB_SHA", "CI_COMMIT_SHA", "BITBUCKET_COMMIT", "CIRCLE_SHA1", "BUILDKITE_COMMIT")
_COMMIT = re.compile(r"[0-9a-f]{7,64}")
_WEB_URL = re.compile(r"https?://[\x21-\x7e]{1,1000}")
_TOP_KEYS = ("source", "exclude", "environments")
_ENV_KEYS = ("url", "endpoint_url", "region")
# Most specific suffix first: OBJSYNC_ENV_DEV_ENDPOINT_URL is dev's endpoint, not the URL of "dev_endpoint".
_OVERRIDE_SUFFIXES = (("_ENDPOINT_URL", "endpoint_url"), ("_REGION", "region"), ("_URL", "url"))


class ConfigError(ValueError):
    """The project's objsync configuration is missing, malformed or names no such environment."""


@dataclass(frozen=True)
class Environment:
    """One push target: `s3://bucket/prefix`, with the endpoint and region to reach it."""

    name: str
    location: Location
    endpoint_url: str | None = None
    region: str | None = None
    defined_in: str = ""


@dataclass(frozen=True)
class ProjectConfig:
    """What the repo's config file (if any) and the CI environment say about pushing."""

    root: Path  # the config file's folder, or the starting folder when there is none
    path: Path | None
    environments: Mapping[str, Environment] = field(default_factory=dict)
    source: str | None = None
    excludes: tuple[str, ...] = ()

    def environment(self, name: str) -> Environment:
        """The named environment, or a ConfigError that lists the configured ones."""
        if name in self.environments:
            return self.environments[name]
        for known_name, e in self.environments.items():
            # OBJSYNC_ENV_PROD_EU_URL defines `prod_eu`; `objsync push prod-eu` means the same environment.
            if env_var(known_name, "") == env_var(name, ""):
                return replace(e, name=name)
        where = f"in {self.path}" if self.path else f"(no {CONFIG_FILE} or [tool.objsync] found)"
        known = ", ".join(sorted(self.environments)) or "none"
        raise ConfigError(f"unknown environment {name!r}; configured {where} or by {ENV_PREFIX}<NAME>_URL: "
                          f"{known}. Add [environments.{name}] with url = \"s3://BUCKET/PREFIX\" to "
                          f"{CONFIG_FILE}, or set {env_var(name, 'URL')}")

    def source_dir(self, flag: str | None, cwd: Path) -> Path:
        """--source is relative to the current folder; the config's `source` to the config's folder."""
        if flag:
            return cwd / flag
        return self.root / (self.source or DEFAULT_SOURCE)


def env_var(name: str, suffix: str) -> str:
    """The override variable of an environment: ('prod-eu', 'URL') gives OBJSYNC_ENV_PROD_EU_URL."""
    return f"{ENV_PREFIX}{name.upper().replace('-', '_')}_{suffix}"


def load_project(start: Path, env: Mapping[str, str]) -> ProjectConfig:
    """Find and read the config file from `start` up to the git root, then apply CI overrides."""
    found = find_config(start)
    if found is None:
        return with_overrides(ProjectConfig(root=start, path=None), env)
    path, table = found
    return with_overrides(parse_config(table, path), env)


def find_config(start: Path) -> tuple[Path, dict[str, Any]] | None:
    """The nearest objsync.toml, or pyproject.toml with [tool.objsync], and its table."""
    top = git_root(start)
    folder = start
    while True:
        own = folder / CONFIG_FILE
        if own.is_file():
            return own, _read_toml(own)
        pyproject = folder / PYPROJECT
        if pyproject.is_file():
            table = _read_toml(pyproject).get("tool", {}).get("objsync")
            if table is not None:
                return pyproject, table
        if top is None or folder == top or folder.parent == folder:
            return None
        folder = folder.parent


def git_root(start: Path) -> Path | None:
    """The nearest folder at or above `start` holding `.git` (a folder, or a file in worktrees)."""
    for folder in (start, *start.parents):
        if (folder / ".git").exists():
            return folder
    return None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None


def parse_config(table: Any, path: Path) -> ProjectConfig:
    """Validate the objsync table of a config file into a ProjectConfig."""
    where = str(path) if path.name == CONFIG_FILE else f"[tool.objsync] in {path}"
    _known_keys(table, _TOP_KEYS, where)
    source = table.get("source")
    if source is not None and (not isinstance(source, str) or not source):
        raise ConfigError(f"{where}: source must be a folder name such as \"workflow\"")
    excludes = table.get("exclude", [])
    if not isinstance(excludes, list) or not all(isinstance(e, str) for e in excludes):
        raise ConfigError(f"{where}: exclude must be a list of globs such as [\"tests/**\"]")
    envs = table.get("environments", {})
    if not isinstance(envs, dict):
        raise ConfigError(f"{where}: environments must be a table such as [environments.dev]")
    parsed = {name: _environment(name, spec, f"{where}, environments.{name}") for name, spec in envs.items()}
    return ProjectConfig(root=path.parent, path=path, environments=parsed, source=source,
                         excludes=tuple(excludes))


def _environment(name: str, spec: Any, where: str) -> Environment:
    try:
        check_env_name(name)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    _known_keys(spec, _ENV_KEYS, where)
    for key in _ENV_KEYS:
        if key in spec and (not isinstance(spec[key], str) or not spec[key]):
            raise ConfigError(f"{where}: {key} must be a non-empty string")
    if "url" not in spec:
        raise ConfigError(f"{where}: url is missing; set url = \"s3://BUCKET/PREFIX\"")
    return Environment(name, _location(spec["url"], where), spec.get("endpoint_url"), spec.get("region"), where)


def _location(url: str, where: str) -> Location:
    try:
        return Location.parse(url)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _known_keys(table: Any, known: tuple[str, ...], where: str) -> None:
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table")
    unknown = sorted(k for k in table if k not in known)
    if unknown:
        raise ConfigError(f"{where}: unknown key {', '.join(map(repr, unknown))}; known keys: {', '.join(known)}")


def with_overrides(cfg: ProjectConfig, env: Mapping[str, str]) -> ProjectConfig:
    """Apply OBJSYNC_ENV_<NAME>_URL / _ENDPOINT_URL / _REGION; a URL alone defines a new environment."""
    by_stem = {env_var(name, "")[:-1]: name for name in cfg.environments}
    settings: dict[str, dict[str, str]] = {}
    sources: dict[str, list[str]] = {}
    for var, value in sorted(env.items()):
        if not var.startswith(ENV_PREFIX) or not value:
            continue
        for suffix, key in _OVERRIDE_SUFFIXES:
            if var.endswith(suffix) and len(var) > len(ENV_PREFIX) + len(suffix):
                stem = var[: -len(suffix)]
                name = by_stem.get(stem) or stem[len(ENV_PREFIX):].lower()
                settings.setdefault(name, {})[key] = value
                sources.setdefault(name, []).append(var)
                break
    merged = dict(cfg.environments)
    for name, values in settings.items():
        where = "environment variables " + ", ".join(sources[name])
        base = merged.get(name)
        if base is None and "url" not in values:
            continue  # an endpoint or region for an environment that is not configured anywhere
        try:
            check_env_name(name)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        merged[name] = Environment(
            name=name,
            location=_location(values["url"], where) if "url" in values else base.location,
            endpoint_url=values.get("endpoint_url", base.endpoint_url if base else None),
            region=values.get("region", base.region if base else None),
            defined_in=where if base is None else f"{base.defined_in}, overridden by {where}")
    return ProjectConfig(cfg.root, cfg.path, merged, cfg.source, cfg.excludes)


def resolve_repo(flag: str | None, env: Mapping[str, str], remote_url: Callable[[], str | None],
                 folder: Path) -> tuple[str, str]:
    """The repo name and where it came from: --repo, CI variables, git's origin, then the folder name.

    Raises ValueError for a name that is not a safe namespace name; it is never rewritten.
    """
    candidates: list[tuple[str | None, str]] = [(flag, "--repo")]
    candidates += [(convert(env[var]) if env.get(var) else None, var) for var, convert in REPO_VARS]
    name, origin = next(((n, o) for n, o in candidates if n), (None, ""))
    if name is None:
        url = remote_url()
        if url:
            name, origin = repo_from_url(url), f"git remote origin {url}"
    if not name:
        name, origin = folder.name, f"the folder name of {folder}"
    try:
        return check_repo_name(name), origin
    except ValueError as exc:
        raise ValueError(f"repo name from {origin}: {exc}; pass --repo NAME") from None


def repo_from_url(url: str) -> str:
    """The last path segment of a git URL without '.git': git@host:org/name.git gives 'name'."""
    tail = re.split(r"[/:]", url.strip().rstrip("/"))[-1]
    return tail[:-4] if tail.endswith(".git") else tail


def resolve_commit(env: Mapping[str, str], head: Callable[[], str | None]) -> str | None:
    """The commit SHA from the CI variables, else `git rev-parse HEAD`; values that are not hex are passed over."""
    for var in COMMIT_VARS:
        value = env.get(var, "").strip().lower()
        if _COMMIT.fullmatch(value):
            return value
    value = (head() or "").strip().lower()
    return value if _COMMIT.fullmatch(value) else None


def resolve_source_url(env: Mapping[str, str]) -> str | None:
    """The repo's web page as CI gives it (GitHub, GitLab, Bitbucket), or OBJSYNC_SOURCE_URL; None when unknown."""
    candidates = [env.get("OBJSYNC_SOURCE_URL", "")]
    if env.get("GITHUB_SERVER_URL") and env.get("GITHUB_REPOSITORY"):
        candidates.append(f"{env['GITHUB_SERVER_URL'].rstrip('/')}/{env['GITHUB_REPOSITORY']}")
    candidates += [env.get("CI_PROJECT_URL", ""), env.get("BITBUCKET_GIT_HTTP_ORIGIN", "")]
    for url in candidates:
        url = url.strip().rstrip("/")
        if _WEB_URL.fullmatch(url):
            return url.removesuffix(".git")
    return None


def git(cwd: Path, *args: str) -> str | None:
    """The output of one git command, or None when git is missing or the command fails."""
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None

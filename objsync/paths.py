"""Pure rules that turn bucket keys into safe relative paths and apply include/exclude globs."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Iterable, Mapping

STATE_DIR = ".objsync"
# Linux limits: a name is at most 255 bytes, a path at most 4095 bytes plus the NUL.
NAME_MAX = 255
PATH_MAX = 4095


class UnsafeKey(ValueError):
    """A key that cannot be written below the destination safely; the message says why."""


def normalize_prefix(prefix: str) -> str:
    """Treat a prefix as a folder: '' stays '', 'p' and 'p/' both become 'p/'."""
    prefix = prefix.lstrip("/")
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


def is_dir_marker(key: str) -> bool:
    """Zero-byte 'folder' objects that consoles create end in '/'; they carry no file."""
    return key.endswith("/")


def relative_path(key: str, prefix: str) -> str:
    """Map a key under `prefix` (already normalized) to a relative POSIX path, or raise UnsafeKey."""
    if not key.startswith(prefix):
        raise UnsafeKey(f"key is outside the prefix {prefix!r}")
    rel = key[len(prefix):]
    check_relative(rel)
    return rel


def check_relative(rel: str) -> None:
    """Raise UnsafeKey unless `rel` is a plain relative path of ordinary segments."""
    if not rel:
        raise UnsafeKey("empty path")
    if rel.startswith("/"):
        raise UnsafeKey("absolute-looking path (leading '/')")
    for ch in rel:
        if unicodedata.category(ch) == "Cc":  # C0, DEL and C1 (U+0080-U+009F), terminal controls among them
            raise UnsafeKey(f"control character {ch!r} in path")
    if "\ufffd" in rel:
        # botocore decodes listed keys with errors="replace": this may stand for bytes that are not
        # UTF-8, and a GET for the decoded name would ask for another object.
        raise UnsafeKey("path holds U+FFFD, the mark of bytes that are not valid UTF-8")
    if "\\" in rel:
        raise UnsafeKey("backslash in path")
    try:
        encoded = rel.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsafeKey("path is not valid UTF-8") from None
    if len(encoded) > PATH_MAX:
        raise UnsafeKey(f"path is {len(encoded)} bytes, over the limit of {PATH_MAX}")
    for segment in rel.split("/"):
        if segment == "":
            raise UnsafeKey("empty path segment ('//')")
        if segment in (".", ".."):
            raise UnsafeKey(f"'{segment}' path segment")
        if len(segment.encode("utf-8")) > NAME_MAX:
            raise UnsafeKey(f"a name is over {NAME_MAX} bytes")
    if rel.split("/", 1)[0] == STATE_DIR:
        raise UnsafeKey(f"'{STATE_DIR}/' is reserved for objsync's own state")


def is_reserved(rel: str) -> bool:
    """True for paths in objsync's own namespace, which are never mirrored either way."""
    return rel == STATE_DIR or rel.startswith(STATE_DIR + "/")


def nfc(rel: str) -> str:
    """The NFC form, used to find names that differ only in Unicode normalization."""
    return unicodedata.normalize("NFC", rel)


def parents(rel: str) -> list[str]:
    """Every ancestor directory of `rel`, shortest first: 'a/b/c' gives ['a', 'a/b']."""
    parts = rel.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


@dataclass(frozen=True, slots=True)
class Conflict:
    """A path that cannot coexist with `other` in one folder."""

    path: str
    other: str
    unicode: bool  # True: the two differ only in Unicode normalization; False: `path` is a file and a folder


def conflicts(paths: Iterable[str] | Mapping[str, object]) -> dict[str, Conflict]:
    """Paths that cannot coexist with another: a file that is also a folder, and Unicode look-alikes.

    Of look-alikes, the NFC form (else the smallest) is kept and the others are named.
    """
    present = paths if isinstance(paths, (set, frozenset, dict)) else dict.fromkeys(paths)  # keeps their order
    out: dict[str, Conflict] = {}
    for path in present:
        if "/" not in path:
            continue  # a top-level name has no parent to clash with
        for parent in parents(path):
            if parent in present and parent not in out:
                out[parent] = Conflict(parent, path, False)
    by_form: dict[str, list[str]] = {}
    for path in present:
        by_form.setdefault(nfc(path), []).append(path)
    for form, same in by_form.items():
        if len(same) > 1:
            keep = form if form in same else min(same)
            for path in sorted(same):
                if path != keep and path not in out:
                    out[path] = Conflict(path, keep, True)
    return out


@dataclass(frozen=True)
class Filter:
    """Include and exclude globs with doublestar semantics, matched against the relative path."""

    includes: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    _inc: object = field(init=False, repr=False, compare=False)
    _exc: object = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_inc", _compile(self.includes))
        object.__setattr__(self, "_exc", _compile(self.excludes))

    def selects(self, rel: str) -> bool:
        """True when `rel` is to be mirrored: included (or no includes given) and not excluded."""
        if self._exc is not None and _matches_dirwise(self._exc, rel):
            return False
        return self._inc is None or self._inc.match(rel)


def _compile(patterns: tuple[str, ...]):
    if not patterns:
        return None
    from wcmatch import glob  # loaded only by a pull that has patterns

    return glob.compile(list(patterns), flags=glob.GLOBSTAR | glob.DOTGLOB)


def _matches_dirwise(matcher, rel: str) -> bool:
    if matcher.match(rel):
        return True
    # A directory is matched with a trailing '/', so 'foo/**' also covers 'foo' and all below it.
    return any(matcher.match(d + "/") for d in parents(rel) + [rel])


def split_patterns(values: list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """Flatten repeatable, comma-separated glob flags into one tuple, dropping empty items."""
    out: list[str] = []
    for value in values or ():
        out.extend(p.strip() for p in value.split(",") if p.strip())
    return tuple(out)

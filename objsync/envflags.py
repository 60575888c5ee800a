"""Flags that may also come from environment variables, recorded as they are added to a parser."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

TRUE = frozenset({"1", "true", "yes", "on", "y", "t"})
# Empty counts as false: a Kubernetes manifest often sets a variable to "" to turn it off.
FALSE = frozenset({"0", "false", "no", "off", "n", "f", ""})


@dataclass(frozen=True)
class EnvFlag:
    """One flag's variable, the argparse destination it fills, and how its text becomes the flag's value."""

    var: str
    dest: str
    read: Callable[[str], Any]


class FlagTable:
    """Adds flags to one parser and keeps, for each, the variable `<prefix><DEST>` it may come from."""

    def __init__(self, parser: argparse.ArgumentParser, prefix: str) -> None:
        self.parser, self.prefix = parser, prefix
        self.flags: list[EnvFlag] = []

    def add(self, *names: str, env: bool | Callable[[str], Any] = True, **kwargs: Any) -> None:
        """`parser.add_argument(*names, **kwargs)`; `env` False keeps the flag out, a function reads the text."""
        action = self.parser.add_argument(*names, **kwargs)
        if env is False:
            return
        read = env if callable(env) else reader(kwargs.get("action", "store"), kwargs.get("type"),
                                                kwargs.get("choices"))
        self.flags.append(EnvFlag(self.prefix + action.dest.upper(), action.dest, read))


def reader(action: str, convert: Callable[[str], Any] | None, choices: Iterable | None) -> Callable[[str], Any]:
    """How a variable's text becomes the value that `action` would give a flag on the command line."""
    if action == "store_true":
        return parse_bool
    if action == "store_false":
        return lambda text: not parse_bool(text)
    if action not in ("store", "append"):
        raise TypeError(f"a flag with action {action!r} cannot come from the environment; pass env=False")
    allowed = tuple(choices) if choices is not None else None

    def read(text: str) -> Any:
        value = convert(text) if convert else text
        if allowed is not None and value not in allowed:
            raise ValueError(f"choose from {', '.join(map(str, allowed))}")
        return [value] if action == "append" else value

    return read


def parse_bool(text: str) -> bool:
    """true/false, yes/no, on/off, 1/0 (any case)."""
    t = text.strip().lower()
    if t in TRUE:
        return True
    if t in FALSE:
        return False
    raise ValueError(f"{text!r} is not a boolean; use true or false (or yes/no, on/off, 1/0)")


def env_defaults(flags: Iterable[EnvFlag], env: Mapping[str, str]) -> dict[str, Any]:
    """The flag values the environment gives, by destination; raises ValueError naming a bad variable."""
    out: dict[str, Any] = {}
    for flag in flags:
        if flag.var not in env:
            continue
        text = env[flag.var]
        try:
            out[flag.dest] = flag.read(text)
        except (ValueError, argparse.ArgumentTypeError) as exc:
            raise ValueError(f"environment variable {flag.var}={text!r}: {exc}") from None
    return out

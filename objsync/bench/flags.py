"""Parsers for `objsync bench` flags: lists, durations and NAME=N pairs."""

from __future__ import annotations

import argparse

# Longest suffix first, so that "500ms" is not read as minutes.
_UNITS = (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0))


def csv_of(kind):
    """A parser of comma-separated values of `kind`, e.g. csv_of(int)("1,2") == (1, 2)."""
    def parse(text: str) -> tuple:
        try:
            return tuple(kind(x.strip()) for x in text.split(",") if x.strip())
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    parse.__name__ = f"list of {kind.__name__}"
    return parse


def tool_repeat(text: str) -> tuple[str, int]:
    name, sep, count = text.partition("=")
    if not sep or not count.isdigit() or int(count) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: use NAME=N with N at least 1, e.g. aws=1")
    return name.strip(), int(count)


def duration(text: str) -> float:
    """'500ms', '2s', '1m', '1h' or plain seconds: the forms objsync pull's --interval takes."""
    number, scale = text.strip(), 1.0
    for unit, seconds in _UNITS:
        if number.endswith(unit):
            number, scale = number[:-len(unit)], seconds
            break
    try:
        value = float(number) * scale
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration above zero, such as 500ms, 2s or 1m")
    return value


def add_run_flags(p: argparse.ArgumentParser, *, rounds: int, preset: str, presets, keep_what: str) -> None:
    """The flags every standalone benchmark script takes: rounds, tree, seed, outputs and the work folder."""
    p.add_argument("--rounds", type=int, default=rounds, help=f"interleaved rounds (default {rounds})")
    p.add_argument("--preset", choices=sorted(presets), default=preset, help=f"tree to publish (default {preset})")
    p.add_argument("--seed", type=int, default=20261130)
    p.add_argument("--json", metavar="FILE", help="write every run and the summary to FILE")
    p.add_argument("--out", metavar="FILE", help="also write the Markdown report to FILE")
    p.add_argument("--keep", action="store_true", help=f"keep the work folder ({keep_what})")


def say(msg: str) -> None:
    """A progress line on stderr, with the time."""
    import sys
    import time

    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

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

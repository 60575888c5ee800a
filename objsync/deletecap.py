"""The delete cap shared by pull and push: `--max-delete N|P%`, and the default a pull applies."""

from __future__ import annotations

import math
from decimal import Decimal

# By default a pull pass may delete half the folder, and always 10 files: removing one repo of several
# from a shared prefix goes through, while a prefix that points elsewhere (every path changes) does not.
DEFAULT_MAX_DELETE = "50%"
DEFAULT_DELETE_FLOOR = 10
_COUNT, _SHARE = "a count of 0 or more (e.g. 100)", "a percentage from 0% to 100% (e.g. 50%)"


def parse_max_delete(text: str) -> str:
    """Validate `--max-delete N|P%`; the error gives the whole allowed range."""
    t = text.strip()
    body = t[:-1] if t.endswith("%") else t
    try:
        value = float(body) if t.endswith("%") else int(body)
    except ValueError:
        raise ValueError(f"{text!r} is neither {_COUNT} nor {_SHARE}") from None
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number; use {_COUNT} or {_SHARE}")
    if value < 0 or (t.endswith("%") and value > 100):
        raise ValueError(f"{text!r} is neither {_COUNT} nor {_SHARE}")
    return t


def max_delete_count(spec: str | None, n_total: int) -> int | None:
    """Turn `--max-delete N|P%` into a count for `n_total` files (None: no cap).

    A percentage rounds up, so any share above 0 % allows at least one delete.
    """
    if spec is None:
        return None
    spec = spec.strip()
    if spec.endswith("%"):
        # Decimal keeps 10 % of 70 at exactly 7, where binary floats would round it up to 8.
        return math.ceil(Decimal(spec[:-1]) * n_total / 100)
    return int(spec)


def default_max_delete(n_local: int) -> int:
    """The cap on a pull's deletes when `--max-delete` is not given."""
    return max(DEFAULT_DELETE_FLOOR, max_delete_count(DEFAULT_MAX_DELETE, n_local))

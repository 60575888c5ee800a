"""One call in a freshly forked child, so that nothing the parent (or an earlier call) imported is reused."""

from __future__ import annotations

import json
import os
import signal
from typing import Callable


def forked(fn: Callable[..., object], *args: object) -> object | None:
    """fn(*args) in a forked child, its JSON result read back over a pipe; None when the child died first."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent's handler is not the child's
        os.close(r)
        data = json.dumps(fn(*args)).encode()
        while data:
            data = data[os.write(w, data):]
        os._exit(0)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 1 << 16):
        chunks.append(chunk)
    os.close(r)
    os.waitpid(pid, 0)
    try:
        return json.loads(b"".join(chunks))
    except ValueError:
        return None

"""Signals: SIGTERM and SIGINT stop cleanly, SIGHUP asks for a full pass now."""

from __future__ import annotations

import signal
import threading


class Signals:
    """SIGTERM and SIGINT ask for a clean stop; SIGHUP asks for a pass now, looking at every file."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.hup = threading.Event()
        self.received: int | None = None
        self._old: dict[int, object] = {}

    def install(self) -> "Signals":
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._old[sig] = signal.signal(sig, self._on_stop)
        self._old[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._on_hup)
        return self

    def _on_hup(self, _signum, _frame) -> None:
        self.hup.set()
        self.wake.set()

    def _on_stop(self, signum, _frame) -> None:
        self.received = signum
        self.stop.set()
        self.wake.set()

    def restore(self) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)

    def sleep(self, seconds: float) -> None:
        """Wait for `seconds`, a stop or a SIGHUP, whichever comes first."""
        self.wake.wait(seconds)
        self.wake.clear()

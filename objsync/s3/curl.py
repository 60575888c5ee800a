"""Many GETs at once from one thread, through libcurl's multi interface (pycurl).

libcurl keeps connections alive, parses responses and enforces lengths in C; Python only hands it
signed requests and takes the body chunks. One thread drives every transfer, so a worker never
pays for GIL hand-offs between download threads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import pycurl

_BUFFER = 256 << 10  # bytes per body callback; fewer calls for large objects
_ERROR_BODY = 4096  # of an error's body, kept for its code


@dataclass(frozen=True, slots=True)
class Get:
    """One request: the full URL, its (signed) header lines, and where the body goes."""

    url: str
    headers: Sequence[str]
    sink: Callable[[bytes], object]
    expect: tuple[int, ...] = (200,)  # the statuses whose body goes to `sink`; any other is an error


@dataclass(frozen=True, slots=True)
class Reply:
    """What came back: the HTTP status (0 when no answer arrived), lower-cased headers, or an error."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    raised: Exception | None = None  # what the sink raised, which aborted the transfer
    expect: tuple[int, ...] = (200,)
    body: bytes = b""  # the start of an error's body (S3's XML), when the status was not expected

    @property
    def ok(self) -> bool:
        return self.error is None and self.status in self.expect


@dataclass(frozen=True)
class TransferConfig:
    """Connection settings shared by every handle."""

    connect_timeout: float = 10.0
    read_timeout: float = 30.0  # abort a transfer that receives nothing for this long
    verify: bool = True
    ca_file: str | None = None


class Transfers:
    """Up to `size` reusable easy handles under one multi handle; not for use by two threads at once."""

    def __init__(self, size: int, cfg: TransferConfig) -> None:
        self._multi = pycurl.CurlMulti()
        self._size, self._cfg = max(1, size), cfg
        # Made as transfers need them: a quiet pass lists with one, where making all would cost milliseconds.
        self._idle: list[pycurl.Curl] = []
        self._all: list[pycurl.Curl] = []

    def _new(self) -> pycurl.Curl:
        h = self._handle(self._cfg)
        self._all.append(h)
        return h

    @staticmethod
    def _handle(cfg: TransferConfig) -> pycurl.Curl:
        h = pycurl.Curl()
        h.setopt(pycurl.NOSIGNAL, 1)
        h.setopt(pycurl.PROXY, "")  # callers only take this path when no proxy applies
        h.setopt(pycurl.FOLLOWLOCATION, 0)
        h.setopt(pycurl.BUFFERSIZE, _BUFFER)
        h.setopt(pycurl.CONNECTTIMEOUT_MS, max(1, int(cfg.connect_timeout * 1000)))
        h.setopt(pycurl.LOW_SPEED_LIMIT, 1)
        h.setopt(pycurl.LOW_SPEED_TIME, max(1, round(cfg.read_timeout)))
        h.setopt(pycurl.TCP_KEEPALIVE, 1)
        if not cfg.verify:
            h.setopt(pycurl.SSL_VERIFYPEER, 0)
            h.setopt(pycurl.SSL_VERIFYHOST, 0)
        elif cfg.ca_file:
            h.setopt(pycurl.CAINFO, cfg.ca_file)
        return h

    def run(self, gets: Sequence[Get], cancelled: Callable[[], bool] | None = None) -> list[Reply]:
        """Run every request, at most `size` at a time; replies come back in the order of `gets`.

        Once `cancelled()` is true, transfers still running are dropped and get the error "cancelled".
        """
        replies: list[Reply | None] = [None] * len(gets)
        queue = list(range(len(gets) - 1, -1, -1))
        active = 0
        try:
            while queue or active:
                if cancelled is not None and cancelled():
                    break
                while queue and (self._idle or len(self._all) < self._size):
                    self._start(self._idle.pop() if self._idle else self._new(), queue.pop(), gets)
                    active += 1
                while self._multi.perform()[0] == pycurl.E_CALL_MULTI_PERFORM:
                    pass
                while True:
                    left, ok, failed = self._multi.info_read()
                    done = [(h, None) for h in ok] + [(h, f"curl error {code}: {msg}") for h, code, msg in failed]
                    for h, error in done:
                        index, head, raised, _, errbody = h.job
                        status = h.getinfo(pycurl.RESPONSE_CODE)
                        replies[index] = Reply(status, head, error, raised[0] if raised else None, gets[index].expect,
                                               bytes(errbody))
                        self._finish(h)
                        active -= 1
                    if not left:
                        break
                if active:
                    self._multi.select(0.2 if cancelled is not None else 1.0)
        finally:
            if active:  # cancelled, or an exception: leave every handle reusable
                for h in self._all:
                    if h not in self._idle:
                        self._finish(h)
        return [r if r is not None else Reply(0, {}, "cancelled") for r in replies]

    def _start(self, h: pycurl.Curl, index: int, gets: Sequence[Get]) -> None:
        get = gets[index]
        head: dict[str, str] = {}
        raised: list[Exception] = []
        status = [0]
        errbody = bytearray()

        def header(line: bytes) -> None:
            if line.startswith(b"HTTP/"):
                status[0] = int(line.split()[1]) if len(line.split()) > 1 and line.split()[1].isdigit() else 0
                head.clear()
                return
            name, sep, value = line.partition(b":")
            if sep:
                head[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")

        def write(chunk: bytes, sink=get.sink, expect=get.expect) -> int | None:
            if status[0] not in expect:
                errbody.extend(chunk[:_ERROR_BODY - len(errbody)])
                return None  # an error's body (S3's XML) is never the object's bytes
            # An exception must not escape into libcurl (pycurl would print it); keep it for the
            # caller and abort the transfer by accepting no bytes.
            try:
                sink(chunk)
            except Exception as exc:
                raised.append(exc)
                return 0
            return None

        h.job = (index, head, raised, status, errbody)
        h.setopt(pycurl.URL, get.url)
        h.setopt(pycurl.HTTPHEADER, list(get.headers))
        h.setopt(pycurl.WRITEFUNCTION, write)
        h.setopt(pycurl.HEADERFUNCTION, header)
        self._multi.add_handle(h)

    def _finish(self, h: pycurl.Curl) -> None:
        try:
            self._multi.remove_handle(h)
        except pycurl.error:
            pass  # an exception came before the handle was added
        self._idle.append(h)

    def close(self) -> None:
        for h in self._all:
            h.close()
        self._multi.close()
        self._idle.clear()
        self._all.clear()

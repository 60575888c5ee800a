"""The latency profile: a loopback TCP forwarder that makes the S3 server look one round trip away.

Every byte a client sends is held for one round trip (RTT) before it goes on to the server, and the
server's answer comes straight back. So each request costs one RTT from the moment the client sends
it, as on a real network: on a keep-alive connection every request pays again, and pipelined
requests overlap instead of queueing behind each other's delay, because each chunk is due at its own
arrival time plus the RTT (one thread reads and timestamps, never sleeping on a chunk). A new
connection also pays its handshake first: HANDSHAKE_RTTS round trips before its first byte is due.
Bandwidth is not limited: this models distance, not a thin pipe.

Run as `python -m objsync.bench.latency`, it serves until its parent exits, it is told to stop, or
its lifetime runs out; `latency_proxy()` starts it and stops it.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import resource
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import urlsplit

HOST = "127.0.0.1"
# TCP, then TLS 1.3, before the first request: real S3 is HTTPS, the benchmark server plain HTTP.
HANDSHAKE_RTTS = 2
MAX_CONNECTIONS = 1024  # more wait in the listen backlog
MAX_PENDING = 4 << 20  # bytes held per connection before the client is no longer read (backpressure)
IDLE_SECONDS = 600.0  # a connection with no byte either way for this long is closed
CHUNK = 1 << 16
THREAD_STACK = 256 << 10


@dataclass(frozen=True)
class Latency:
    """A round trip to the server, and how many of them a new connection's handshake costs."""

    rtt: float
    handshake_rtts: int = HANDSHAKE_RTTS

    def describe(self) -> str:
        return (f"{self.rtt * 1000:g} ms round trip per request, through a loopback proxy that holds every byte "
                f"sent to the server for one round trip; a new connection first waits {self.handshake_rtts} more "
                "(TCP and TLS 1.3 handshakes)")

    def due(self, arrival: float, opened: float) -> float:
        """When bytes read at `arrival`, on a connection accepted at `opened`, may go to the server."""
        return max(arrival, opened + self.handshake_rtts * self.rtt) + self.rtt


class DelayLine:
    """Chunks of one connection's client-to-server stream, each due at its arrival plus the latency."""

    def __init__(self, latency: Latency, opened: float) -> None:
        self.latency, self.opened = latency, opened
        self._chunks: collections.deque[tuple[float, bytes]] = collections.deque()
        self.pending = 0

    def __len__(self) -> int:
        return len(self._chunks)

    def push(self, arrival: float, data: bytes) -> float:
        """Hold `data`; returns when it is due."""
        due = self.latency.due(arrival, self.opened)
        self._chunks.append((due, data))
        self.pending += len(data)
        return due

    def next_due(self) -> float | None:
        return self._chunks[0][0] if self._chunks else None

    def pop_due(self, now: float) -> bytes:
        """Every chunk due by `now`, in order, joined; b'' when none is."""
        out = []
        while self._chunks and self._chunks[0][0] <= now:
            out.append(self._chunks.popleft()[1])
        data = b"".join(out)
        self.pending -= len(data)
        return data


class _Connection:
    """One client connection and its upstream: a delayed pump one way, a plain pump the other."""

    def __init__(self, client: socket.socket, upstream: tuple[str, int], latency: Latency) -> None:
        self.opened = time.monotonic()
        self.client, self.upstream_addr, self.latency = client, upstream, latency
        self.active = self.opened

    def run(self) -> None:
        try:
            upstream = socket.create_connection(self.upstream_addr, timeout=10)
        except OSError:
            self.client.close()
            return
        upstream.settimeout(None)
        for s in (self.client, upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        back = threading.Thread(target=self._pump, args=(upstream, self.client), daemon=True)
        back.start()
        try:
            self._delayed(self.client, upstream)
        except OSError:
            _shut(self.client, upstream)
        back.join()
        self.client.close()
        upstream.close()

    def _delayed(self, src: socket.socket, dst: socket.socket) -> None:
        line = DelayLine(self.latency, self.opened)
        poller = select.poll()  # not select(): a busy proxy has file descriptors above 1024
        poller.register(src, select.POLLIN)
        eof = False
        while True:
            now = time.monotonic()
            ready = line.pop_due(now)
            if ready:
                dst.sendall(ready)
                self.active = now
            if eof and not line:
                with contextlib.suppress(OSError):
                    dst.shutdown(socket.SHUT_WR)
                return
            due = line.next_due()
            wait = IDLE_SECONDS if due is None else max(0.0, due - now)
            if eof or line.pending >= MAX_PENDING:
                time.sleep(wait)
                continue
            if not poller.poll(wait * 1000):
                if due is None and time.monotonic() - self.active > IDLE_SECONDS:
                    _shut(src, dst)
                    return
                continue
            data = src.recv(CHUNK)
            if not data:
                eof = True
                continue
            self.active = time.monotonic()
            line.push(self.active, data)

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(CHUNK):
                dst.sendall(data)
                self.active = time.monotonic()
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            _shut(src, dst)


def _shut(*socks: socket.socket) -> None:
    # shutdown, not close: it wakes the other pump if it is blocked on the same socket.
    for s in socks:
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)


def serve(listener: socket.socket, upstream: tuple[str, int], latency: Latency) -> None:
    """Accept connections forever, at most MAX_CONNECTIONS at once."""
    slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def handle(client: socket.socket) -> None:
        try:
            _Connection(client, upstream, latency).run()
        finally:
            slots.release()

    while True:
        slots.acquire()
        try:
            client, _ = listener.accept()
        except OSError:  # out of descriptors, say: wait for connections to end rather than stop serving
            slots.release()
            time.sleep(0.1)
            continue
        threading.Thread(target=handle, args=(client,), daemon=True).start()


@dataclass(frozen=True)
class Proxy:
    """A running latency proxy: the endpoint the tools get, and its process (to charge its CPU)."""

    url: str
    pid: int
    latency: Latency


def loopback_http(url: str | None) -> bool:
    """Whether the proxy can sit in front of `url`: plain HTTP (it does not speak TLS) on this machine."""
    parts = urlsplit(url or "")
    return parts.scheme == "http" and parts.hostname in (HOST, "localhost")


@contextlib.contextmanager
def latency_proxy(upstream_url: str, rtt: float, lifetime: float) -> Iterator[Proxy]:
    """Start the proxy in front of `upstream_url` (plain HTTP on loopback); stop it on exit."""
    if not loopback_http(upstream_url):
        raise ValueError(f"the latency proxy forwards plain HTTP on loopback only, not {upstream_url}")
    parts = urlsplit(upstream_url)
    argv = [sys.executable, "-m", "objsync.bench.latency", "--upstream", f"{parts.hostname}:{parts.port or 80}",
            "--rtt", repr(rtt), "--lifetime", repr(lifetime), "--parent", str(os.getpid())]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert proc.stdout is not None
        port = proc.stdout.readline().strip()
        if not port.isdigit():
            raise RuntimeError(f"the latency proxy did not start (exit status {proc.wait(10)})")
        yield Proxy(f"http://{HOST}:{int(port)}", proc.pid, Latency(rtt))
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m objsync.bench.latency", description=__doc__.splitlines()[0])
    p.add_argument("--upstream", required=True, metavar="HOST:PORT")
    p.add_argument("--rtt", type=float, required=True, help="seconds per round trip")
    p.add_argument("--handshake-rtts", type=int, default=HANDSHAKE_RTTS)
    p.add_argument("--port", type=int, default=0, help="port to listen on (default: any free one)")
    p.add_argument("--lifetime", type=float, default=86_400.0, help="seconds before it stops by itself")
    p.add_argument("--parent", type=int, help="stop when this process is no longer our parent (default: the first)")
    args = p.parse_args(argv)
    # Named by the launcher, so that a parent that dies before we look is noticed too.
    parent, deadline = args.parent or os.getppid(), time.monotonic() + args.lifetime
    host, _, port = args.upstream.rpartition(":")
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # two descriptors per connection
    threading.stack_size(THREAD_STACK)  # two threads per connection
    listener = socket.create_server((HOST, args.port), backlog=MAX_CONNECTIONS)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threading.Thread(target=serve, args=(listener, (host, int(port)), Latency(args.rtt, args.handshake_rtts)),
                     daemon=True).start()
    sys.stdout.write(f"{listener.getsockname()[1]}\n")
    sys.stdout.flush()
    # Stop when the harness is gone (we were re-parented) or the lifetime is over, whatever happened to it.
    while not stop.wait(0.5) and os.getppid() == parent and time.monotonic() < deadline:
        pass
    return 0


if __name__ == "__main__":
    os._exit(main())  # connection threads are not joined: any request still held is abandoned

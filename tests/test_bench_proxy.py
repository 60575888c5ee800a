"""The latency proxy as a process: a delay per request on keep-alive and pipelined HTTP, and its end."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time

import psutil
import pytest

from objsync.bench.latency import latency_proxy

RTT = 0.1
HANDSHAKE = 2 * RTT
BODY = b"x" * 100


RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + BODY


def _answer(conn: socket.socket) -> None:
    """A keep-alive server at its simplest: one fixed response per request head received."""
    pending = b""
    with conn:
        while data := conn.recv(65536):
            pending += data
            while b"\r\n\r\n" in pending:
                _, pending = pending.split(b"\r\n\r\n", 1)
                conn.sendall(RESPONSE)


@pytest.fixture(scope="module")
def upstream():
    listener = socket.create_server(("127.0.0.1", 0))

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:  # closed at the end of the module
                return
            threading.Thread(target=_answer, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


@pytest.fixture(scope="module")
def proxy(upstream):
    with latency_proxy(upstream, RTT, lifetime=120) as p:
        yield p


def port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def test_each_request_on_a_keep_alive_connection_pays_one_round_trip(proxy):
    conn = http.client.HTTPConnection("127.0.0.1", port(proxy.url), timeout=10)
    started = time.monotonic()
    marks = []
    for _ in range(4):
        conn.request("GET", "/")
        assert conn.getresponse().read() == BODY
        marks.append(time.monotonic() - started)
    conn.close()
    assert HANDSHAKE + RTT <= marks[0] < HANDSHAKE + RTT + 0.08
    gaps = [b - a for a, b in zip(marks, marks[1:])]
    assert all(RTT <= g < RTT + 0.08 for g in gaps), gaps


def test_pipelined_requests_overlap_their_round_trips(proxy):
    with socket.create_connection(("127.0.0.1", port(proxy.url)), timeout=10) as s:
        started = time.monotonic()
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 5)
        got = b""
        while got.count(BODY) < 5:
            got += s.recv(65536)
        took = time.monotonic() - started
    # One handshake and one round trip for all five; queued one after another they would take 0.7 s.
    assert HANDSHAKE + RTT <= took < HANDSHAKE + 2 * RTT, took
    assert got.count(b"HTTP/1.1 200 OK") == 5


ORPHAN = textwrap.dedent("""
    import os, sys
    from objsync.bench.latency import latency_proxy
    with latency_proxy(sys.argv[1], 0.01, lifetime=300) as p:
        print(p.pid, flush=True)
        os._exit(0)  # the harness dies without stopping its proxy
""")


def test_the_proxy_stops_by_itself_when_the_harness_is_gone(upstream):
    out = subprocess.run([sys.executable, "-c", ORPHAN, upstream], capture_output=True, text=True, timeout=30,
                         env=dict(os.environ))
    pid = int(out.stdout.strip())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.1)
    else:
        psutil.Process(pid).kill()
        pytest.fail("the orphaned proxy kept running")


def test_the_bench_sends_every_tool_through_the_proxy(seaweed, bucket, aws_env, tmp_path):
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "objsync.bench", "--preset", "tiny", "--tools", "objsync", "--repeats", "1",
         "--endpoint-url", seaweed.endpoint_url, "--bucket", bucket, "--phases", "cold,noop", "--latency", "150ms",
         "--no-chart", "--out", str(out)],
        capture_output=True, text=True, env=dict(os.environ) | aws_env, timeout=180)
    assert proc.returncode == 0, proc.stderr
    (js,) = out.glob("tiny-150ms-*.json")
    doc = json.loads(js.read_text())
    noop = next(r for r in doc["runs"] if r["phase"] == "noop")
    # A fresh process: two handshake round trips and at least one request, 0.45 s that loopback never takes.
    assert noop["wall"] >= 3 * 0.15 and noop["check"]["ok"]
    assert doc["meta"]["latency_rtt"] == 0.15 and "150 ms latency" in proc.stdout

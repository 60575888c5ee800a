"""An HTTP proxy in front of the real S3 server that injects faults into a share of its answers."""

from __future__ import annotations

import http.client
import random
import socket
import struct
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from objsync.s3.etag import is_md5_etag

KINDS = ("500", "503", "429", "reset", "truncate", "stall", "etag", "corrupt")
_BODY_KINDS = {"reset", "truncate", "etag", "corrupt"}  # only for answers that carry an object
_ERROR_XML = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code>"
              "<Message>injected fault</Message></Error>")
_STATUS = {"500": (500, "InternalError"), "503": (503, "SlowDown"), "429": (429, "SlowDown")}


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # connections this proxy cuts on purpose end in errors


class HttpProxy:
    """A threaded HTTP server on a free loopback port that hands every request to `self._handle`."""

    def __init__(self) -> None:
        handle = self._handle

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                handle(self)

            do_HEAD = do_PUT = do_POST = do_DELETE = do_GET

            def log_message(self, *args):
                pass

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        raise NotImplementedError


class FaultProxy(HttpProxy):
    """Forwards to `upstream` (host, port); `rate` of the requests get one of `kinds` instead."""

    def __init__(self, upstream: tuple[str, int], rate: float = 0.2, kinds=KINDS, seed: int = 1,
                 stall_seconds: float = 3.0, objects_only: bool = False, budget: int | None = None) -> None:
        self.upstream = upstream
        self.budget = budget  # inject at most this many faults in all
        self.objects_only = objects_only  # leave listings alone, fault only object GETs
        self.rate = rate
        self.kinds = tuple(kinds)
        self.stall_seconds = stall_seconds
        self.injected: Counter[str] = Counter()
        self.requests = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        super().__init__()

    def _choose(self, carries_object: bool) -> str | None:
        with self._lock:
            self.requests += 1
            if self._rng.random() >= self.rate or (self.objects_only and not carries_object):
                return None
            if self.budget is not None and sum(self.injected.values()) >= self.budget:
                return None
            kinds = [k for k in self.kinds if carries_object or k not in _BODY_KINDS]
            if not kinds:
                return None
            kind = self._rng.choice(kinds)
            self.injected[kind] += 1
            return kind

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else None
        is_object_get = h.command == "GET" and "list-type" not in h.path and h.path.count("/") >= 2
        kind = self._choose(is_object_get)
        if kind in _STATUS:
            status, code = _STATUS[kind]
            payload = _ERROR_XML.format(code=code).encode()
            h.send_response(status)
            h.send_header("Content-Type", "application/xml")
            h.send_header("Content-Length", str(len(payload)))
            h.end_headers()
            h.wfile.write(payload)
            return
        if kind == "stall":
            time.sleep(self.stall_seconds)
            h.close_connection = True
            return
        conn = http.client.HTTPConnection(*self.upstream, timeout=30)
        try:
            conn.request(h.command, h.path, body=body, headers=dict(h.headers.items()))
            resp = conn.getresponse()
            data = resp.read()
            headers = resp.getheaders()
            status = resp.status
        finally:
            conn.close()
        etag = next((v for k, v in headers if k.lower() == "etag"), "")
        if kind == "corrupt" and not is_md5_etag(etag.strip('"')):
            kind = None  # a flipped byte in a multipart object keeps its length and ETag: undetectable
            self.injected["corrupt"] -= 1
        if kind == "corrupt" and data:
            i = len(data) // 2
            data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:]
        h.send_response(status)
        for name, value in headers:
            if name.lower() in ("connection", "transfer-encoding", "keep-alive"):
                continue
            if kind == "etag" and name.lower() == "etag":
                value = '"00000000000000000000000000000000"'
            h.send_header(name, value)
        h.end_headers()
        if h.command == "HEAD":
            return
        if kind in ("reset", "truncate") and data:
            h.wfile.write(data[: len(data) // 2])
            h.wfile.flush()
            if kind == "reset":
                h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            h.close_connection = True
            h.connection.close()
            return
        h.wfile.write(data)


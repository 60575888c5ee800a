"""The status server: `/health` for probes and `/metrics` for Prometheus."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from objsync.daemon.config import parse_addr


@dataclass(frozen=True)
class HealthState:
    """What `/health` answers: healthy or not, and the text of the answer."""

    healthy: bool
    message: str


NOT_FINISHED = HealthState(False, "Pull not finished")
GOOD = HealthState(True, "GOOD")


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class StatusServer:
    """A small threaded HTTP server; `health` is swapped atomically by the daemon."""

    def __init__(self, addr: str, registry) -> None:
        self.health = NOT_FINISHED
        self.registry = registry
        host, port = parse_addr(addr)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                path = self.path.split("?", 1)[0]
                if path == "/health":
                    state = server.health
                    self._send(200 if state.healthy else 500, state.message.encode(), "text/plain; charset=utf-8")
                elif path == "/metrics":
                    self._send(200, generate_latest(server.registry), CONTENT_TYPE_LATEST)
                else:
                    self._send(404, b"not found: try /health or /metrics", "text/plain; charset=utf-8")

            def _send(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass  # probes every few seconds would flood the log

        server_class = _IPv6Server if ":" in host else ThreadingHTTPServer
        self._httpd = server_class((host, port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="status", daemon=True)

    def start(self) -> "StatusServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

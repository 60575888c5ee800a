"""The libcurl transfer engine on its own, against a small local HTTP server."""

import http.server
import socket
import threading

import pytest

from objsync.s3.curl import Get, TransferConfig, Transfers


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):  # noqa: N802 - http.server's naming
        name = self.path.lstrip("/")
        if name.startswith("missing"):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = (name * 1000).encode()
        if name.startswith("short"):  # announces more than it sends, then closes
            self.send_response(200)
            self.send_header("Content-Length", str(len(body) + 10))
            self.send_header("ETag", '"short"')
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", f'"{name}"')
        self.send_header("X-Echo-Auth", self.headers.get("Authorization", ""))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def collect(url, name, headers=()):
    chunks: list[bytes] = []
    return Get(f"{url}/{name}", list(headers), chunks.append), chunks


def test_more_requests_than_handles_all_answered_in_order(server):
    t = Transfers(3, TransferConfig())
    names = [f"f{i}" for i in range(25)]
    gets, sinks = zip(*(collect(server, n, [f"Authorization: token-{n}"]) for n in names))
    replies = t.run(gets)
    for name, reply, chunks in zip(names, replies, sinks):
        assert reply.ok and reply.headers["etag"] == f'"{name}"'
        assert reply.headers["x-echo-auth"] == f"token-{name}"  # each request kept its own headers
        assert b"".join(chunks) == (name * 1000).encode()
    t.close()


def test_handles_are_made_as_transfers_need_them_up_to_the_size(server):
    t = Transfers(3, TransferConfig())
    assert t._all == []  # a pass that sends nothing makes none
    get, chunks = collect(server, "one")
    assert t.run([get])[0].ok and b"".join(chunks) == b"one" * 1000
    assert len(t._all) == 1
    assert all(r.ok for r in t.run([collect(server, f"g{i}")[0] for i in range(10)]))
    assert len(t._all) == 3
    t.close()


def test_errors_are_replies_and_the_handles_stay_usable(server):
    t = Transfers(2, TransferConfig(connect_timeout=2, read_timeout=5))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # bound but not listening: connections are refused

    def full_disk(chunk):
        raise OSError(28, "No space left on device")

    gets = [collect(server, "missing")[0], collect(server, "short")[0],
            Get(f"http://127.0.0.1:{closed}/x", [], lambda c: None),
            Get(f"{server}/ok", [], full_disk)]
    missing, short, refused, raised = t.run(gets)
    assert (missing.status, missing.ok) == (404, False)
    assert short.status == 200 and not short.ok and "curl error 18" in short.error  # partial body
    assert refused.status == 0 and "curl error 7" in refused.error
    assert not raised.ok and isinstance(raised.raised, OSError) and raised.raised.errno == 28
    get, chunks = collect(server, "again")
    (after,) = t.run([get])
    assert after.ok and b"".join(chunks) == b"again" * 1000
    t.close()

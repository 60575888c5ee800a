"""A TCP forwarder in front of the real S3 server, which tests can take down and bring back."""

from __future__ import annotations

import socket
import threading


class TcpProxy:
    """Forwards 127.0.0.1:port to a target; while `down`, every connection is cut at once."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.down = False
        self.accepted = 0  # connections accepted so far
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set_down(self, down: bool) -> None:
        self.down = down
        if down:
            with self._lock:
                for conn in list(self._conns):
                    _close(conn)
                self._conns.clear()

    def close(self) -> None:
        self._closed = True
        self.set_down(True)
        _close(self._listener)

    def _accept(self) -> None:
        _accept_until_closed(self._listener, lambda: self._closed, self._connect)

    def _connect(self, client: socket.socket) -> None:
        self.accepted += 1
        if self.down:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            _close(client)  # a reset, as from a server that is gone
            return
        try:
            upstream = socket.create_connection(self.target, timeout=5)
            upstream.settimeout(None)
        except OSError:
            _close(client)
            return
        with self._lock:
            self._conns.update((client, upstream))
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            _close(src)
            _close(dst)
            with self._lock:
                self._conns.discard(src)
                self._conns.discard(dst)


def _accept_until_closed(listener: socket.socket, closed, handle) -> None:
    """Hand every accepted connection to `handle` until the proxy is closed."""
    while not closed():
        try:
            client, _ = listener.accept()
        except OSError:
            return
        handle(client)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)  # wakes a pump blocked in recv()
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class TlsProxy:
    """Terminates TLS on 127.0.0.1:port and forwards the plain bytes to a target, one thread a connection."""

    def __init__(self, target_host: str, target_port: int, context) -> None:
        self.target = (target_host, target_port)
        self._context = context
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._closed = True
        _close(self._listener)

    def _accept(self) -> None:
        _accept_until_closed(self._listener, lambda: self._closed,
                             lambda client: threading.Thread(target=self._serve, args=(client,), daemon=True).start())

    def _serve(self, raw: socket.socket) -> None:
        import selectors
        import ssl

        try:
            raw.settimeout(10)
            client = self._context.wrap_socket(raw, server_side=True)
            upstream = socket.create_connection(self.target, timeout=10)
        except (OSError, ssl.SSLError):
            _close(raw)  # a client that refuses our certificate ends here
            return
        # One thread moves both directions: an SSL socket must not be read and written at once.
        client.setblocking(False)
        upstream.setblocking(False)
        with selectors.DefaultSelector() as sel:
            sel.register(client, selectors.EVENT_READ)
            sel.register(upstream, selectors.EVENT_READ)
            try:
                while not self._closed:
                    ready = [key.fileobj for key, _ in sel.select(timeout=1)]
                    if client.pending():
                        ready.append(client)
                    for src in ready:
                        dst = upstream if src is client else client
                        try:
                            data = src.recv(65536)
                        except (ssl.SSLWantReadError, BlockingIOError):
                            continue
                        if not data:
                            return
                        dst.setblocking(True)
                        dst.sendall(data)
                        dst.setblocking(False)
            except OSError:
                return
            finally:
                _close(client)
                _close(upstream)

"""An HTTP proxy in front of the real S3 server that adds entries to its ListObjectsV2 answers.

SeaweedFS refuses or rewrites many hostile keys (`..`, `//`, NUL, over-long names, bytes that are
not UTF-8), so this is how such keys reach objsync over real HTTP, as a hostile or buggy server
would send them. A GET for an added key is answered with its body, so a client that accepts such a
key really writes it somewhere; every other request passes through untouched.
"""

from __future__ import annotations

import hashlib
import http.client
import re
from collections import Counter
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, quote, unquote_plus, unquote_to_bytes, urlsplit

from faultproxy import HttpProxy


def url_encoded(raw: bytes) -> str:
    """A key as S3 writes it in a listing asked for with EncodingType=url."""
    return quote(raw, safe="/")


class ListProxy(HttpProxy):
    """Forwards to `upstream`; appends `extra` (url-encoded key -> body) to the last page of each listing."""

    def __init__(self, upstream: tuple[str, int], bucket: str, extra: dict[str, bytes],
                 prefix: str | None = None) -> None:
        self.upstream = upstream
        self.prefix = prefix  # given: only listings of exactly this prefix get the extra entries
        self.extra = dict(extra)
        self._bodies = {b"/" + bucket.encode() + b"/" + unquote_to_bytes(key): body for key, body in extra.items()}
        self.listings = 0
        self.served: Counter[bytes] = Counter()  # GETs answered for added keys, by raw key
        super().__init__()

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        path = unquote_to_bytes(urlsplit(h.path).path)
        if h.command == "GET" and path in self._bodies:
            self.served[path.split(b"/", 2)[2]] += 1
            self._reply(h, 200, [("ETag", f'"{hashlib.md5(self._bodies[path]).hexdigest()}"')], self._bodies[path])
            return
        length = int(h.headers.get("Content-Length") or 0)
        conn = http.client.HTTPConnection(*self.upstream, timeout=30)
        try:
            conn.request(h.command, h.path, body=h.rfile.read(length) if length else None,
                         headers=dict(h.headers.items()))
            resp = conn.getresponse()
            data, headers, status = resp.read(), resp.getheaders(), resp.status
        finally:
            conn.close()
        asked = parse_qs(urlsplit(h.path).query).get("prefix", [""])[0]
        if h.command == "GET" and "list-type=2" in h.path and status == 200 and self.prefix in (None, asked):
            data = self._inject(data, url_mode="encoding-type=url" in h.path)
        self._reply(h, status, headers, data)

    @staticmethod
    def _reply(h: BaseHTTPRequestHandler, status: int, headers, data: bytes) -> None:
        h.send_response(status)
        for name, value in headers:
            if name.lower() not in ("connection", "transfer-encoding", "keep-alive", "content-length"):
                h.send_header(name, value)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(data)

    def _inject(self, xml: bytes, url_mode: bool) -> bytes:
        if b"<IsTruncated>true</IsTruncated>" in xml:
            return xml  # only the last page gets the extra entries
        assert url_mode, "objsync's listings are expected to ask for EncodingType=url"
        self.listings += 1
        entries = "".join(
            f"<Contents><Key>{key}</Key><LastModified>2026-01-02T03:04:05.000Z</LastModified>"
            f"<ETag>&quot;{hashlib.md5(body).hexdigest()}&quot;</ETag><Size>{len(body)}</Size>"
            f"<StorageClass>STANDARD</StorageClass></Contents>" for key, body in self.extra.items())
        # In key order among the server's own, as S3 lists: objsync plans a listing as it streams in.
        blocks = re.findall(rb"<Contents>.*?</Contents>", xml, re.S) + re.findall(rb"<Contents>.*?</Contents>",
                                                                                   entries.encode(), re.S)
        blocks.sort(key=lambda b: unquote_plus(re.search(rb"<Key>(.*?)</Key>", b, re.S).group(1).decode()))
        xml = re.sub(rb"<Contents>.*?</Contents>", b"", xml, flags=re.S)
        xml = xml.replace(b"</ListBucketResult>", b"".join(blocks) + b"</ListBucketResult>")
        return re.sub(rb"<KeyCount>(\d+)</KeyCount>",
                      lambda m: b"<KeyCount>%d</KeyCount>" % (int(m.group(1)) + len(self.extra)), xml)

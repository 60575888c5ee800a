"""The fast path: GETs and listings signed here (SigV4) and run many at once on libcurl.

boto3 spends about a millisecond of CPU per request on events, endpoint rules and response
parsing; for a DAG folder of small files that is most of the work. The signer (objsync.s3.sigv4)
is checked against botocore's, and each request is made exactly once: the Bucket hands anything
but a complete 200 to the boto3 client, whose retries then apply.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass, field
from typing import Callable, Sequence
from urllib.parse import urlsplit

from objsync.model import RemoteObject
from objsync.s3.config import RemoteConfig, Session, parse_timestamp, resolve_region
from objsync.s3.curl import Get, Reply, TransferConfig, Transfers
from objsync.s3.records import ReadInfo, listed
from objsync.s3.sigv4 import Credentials, amz_date, encode_path, encode_query, sign_get

_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


@dataclass(frozen=True)
class Route:
    """Where the fast path sends a bucket's requests, and with which credentials and TLS settings."""

    origin: str  # scheme://host[:port]
    host: str  # the Host header, exactly as signed
    bucket_path: str  # '/bucket' (path style) or '' (virtual host)
    region: str
    transfer: TransferConfig
    concurrency: int
    credentials: object = field(repr=False, compare=False)  # botocore's, refreshed by botocore


def find_route(cfg: RemoteConfig, name: str, session: Session, client: Callable[[], object]) -> Route | None:
    """The route to bucket `name`, or None when the fast path must not be used.

    It is not used when turned off, without credentials, or when an HTTP proxy applies: proxied
    set-ups keep botocore's transport. `client()` gives the boto3 client, which on AWS resolves
    the addressing (virtual host, region, FIPS...) once.
    """
    credentials = session.credentials()
    endpoint = cfg.effective_endpoint()
    if not cfg.fast_get or credentials is None or not no_proxy_for(endpoint or "https://s3.amazonaws.com"):
        return None
    if endpoint:
        # A custom endpoint is addressed path-style (see make_client), so no client is needed.
        parts = urlsplit(endpoint)
        bucket_path, region = f"/{name}", resolve_region(cfg, session)
    else:
        c = client()
        parts = urlsplit(c.generate_presigned_url("get_object", Params={"Bucket": name, "Key": "k"}))
        bucket_path, region = parts.path[:-2], c.meta.region_name
    ca_file = (cfg.verify if isinstance(cfg.verify, str) else ca_bundle(session)) if parts.scheme == "https" else None
    transfer = TransferConfig(connect_timeout=cfg.connect_timeout, read_timeout=cfg.read_timeout,
                              verify=cfg.verify is not False, ca_file=ca_file)
    return Route(f"{parts.scheme}://{parts.netloc}", host_header(parts), bucket_path, region, transfer,
                 cfg.concurrency, credentials)


def ca_bundle(session: Session) -> str:
    """The CA bundle the client would use: AWS_CA_BUNDLE (or the profile's), else certifi's."""
    from botocore.httpsession import get_cert_path

    return session.ca_bundle() or get_cert_path(True)


def host_header(parts) -> str:
    """The Host value botocore signs: lower-case name, IPv6 in brackets, port only when not the default."""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None and parts.port != {"http": 80, "https": 443}.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


def no_proxy_for(url: str) -> bool:
    """True when no HTTP proxy applies to `url`."""
    from urllib.request import getproxies, proxy_bypass

    host = urlsplit(url).hostname or ""
    return not (getproxies() and not proxy_bypass(host))


@dataclass(frozen=True, slots=True)
class FastGet:
    """One GET of a batch: the object, and the callable that takes its body."""

    key: str
    etag: str
    version_id: str | None
    write: Callable[[bytes], object]


def read_info(reply: Reply) -> ReadInfo:
    """What a 200 reply says about the object it carried."""
    return ReadInfo(size=int(reply.headers.get("content-length", -1)), etag=reply.headers.get("etag", "").strip('"'),
                    sse=reply.headers.get("x-amz-server-side-encryption"))


class FastPath:
    """One set of libcurl connections on a Route; one batch at a time."""

    def __init__(self, route: Route) -> None:
        self.route = route
        self._transfers: Transfers | None = None
        self._lock = threading.Lock()

    def get(self, gets: Sequence[FastGet], cancelled: Callable[[], bool] | None = None) -> list[Reply]:
        """One attempt at each GET; replies in order, "cancelled" for those dropped once `cancelled()`."""
        identity = self._identity()
        signed = []
        for g in gets:
            query = encode_query({"versionId": g.version_id}) if g.version_id else ""
            headers = {"If-Match": f'"{g.etag}"'} if g.etag else None
            signed.append(self._signed(identity, self.route.bucket_path + encode_path("/" + g.key), query, headers,
                                       g.write))
        return self._run(signed, cancelled)

    def list(self, prefix: str, level: bool = False) -> tuple[list[RemoteObject], list[str]] | None:
        """Every object under `prefix` (or, with `level`, those directly under it and the sub-folders).

        None when any page fails or cannot be parsed: botocore then gets its chance, and reports.
        """
        import xml.etree.ElementTree as ET

        from botocore.compat import unquote_str

        out: list[RemoteObject] = []
        folders: list[str] = []
        token = None
        while True:
            params = {"list-type": "2", "prefix": prefix, "encoding-type": "url", "max-keys": "1000"}
            if level:
                params["delimiter"] = "/"
            if token:
                params["continuation-token"] = token
            body = io.BytesIO()
            (reply,) = self._run([self._signed(self._identity(), self.route.bucket_path or "/", encode_query(params),
                                               None, body.write)])
            if not reply.ok:
                return None
            try:
                root = ET.fromstring(body.getvalue())
                out += [listed(unquote_str(item.findtext(_NS + "Key")), item.findtext(_NS + "ETag") or "",
                               item.findtext(_NS + "Size"), parse_timestamp(item.findtext(_NS + "LastModified")))
                        for item in root.iter(_NS + "Contents")]
                folders += [unquote_str(p.findtext(_NS + "Prefix")) for p in root.iter(_NS + "CommonPrefixes")]
                token = root.findtext(_NS + "NextContinuationToken")
                truncated = root.findtext(_NS + "IsTruncated") == "true"
            except (ET.ParseError, TypeError, ValueError):
                return None
            if not truncated:
                return out, folders
            if not token:
                return None

    def _identity(self) -> tuple[Credentials, str]:
        """Credentials and a timestamp for one batch of requests: SigV4 accepts minutes of skew,
        and refreshing credentials take a lock, so neither is fetched per request."""
        frozen = self.route.credentials.get_frozen_credentials()
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token), amz_date()

    def _signed(self, identity: tuple[Credentials, str], path: str, query: str, headers: dict | None, sink) -> Get:
        creds, timestamp = identity
        lines = sign_get(creds, self.route.region, self.route.host, path, query, headers, timestamp)
        lines.append(f"Host: {self.route.host}")  # exactly the signed value, whatever the URL's spelling
        return Get(self.route.origin + path + (f"?{query}" if query else ""), lines, sink)

    def _run(self, gets: list[Get], cancelled: Callable[[], bool] | None = None) -> list[Reply]:
        with self._lock:
            if self._transfers is None:
                self._transfers = Transfers(self.route.concurrency, self.route.transfer)
            return self._transfers.run(gets, cancelled)

    def close(self) -> None:
        """Close the connections; the next request opens new ones."""
        with self._lock:
            if self._transfers is not None:
                self._transfers.close()
                self._transfers = None

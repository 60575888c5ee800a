"""One bucket: listing and reading, through boto3 or a lean fast path. No local paths here."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence
from urllib.parse import urlsplit

from objsync.model import RemoteObject
from objsync.s3.config import RemoteConfig, make_client, make_session, parse_timestamp, resolve_region
from objsync.s3.curl import Get, Reply, TransferConfig, Transfers
from objsync.s3.sigv4 import Credentials, amz_date, encode_path, encode_query, sign_get


def list_prefix(client, bucket: str, prefix: str, page_size: int = 1000) -> Iterator[RemoteObject]:
    """Yield every object under `prefix`, page by page, as RemoteObject records."""
    paginator = client.get_paginator("list_objects_v2")
    pages = paginator.paginate(Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": page_size})
    for page in pages:
        for item in page.get("Contents", ()):
            yield _listed(item["Key"], item.get("ETag", ""), item.get("Size", 0), item["LastModified"])


def _listed(key: str, etag: str, size, last_modified) -> RemoteObject:
    """A listing entry as a record; Last-Modified is kept to the millisecond S3 reports."""
    return RemoteObject(key=key, etag=etag.strip('"'), size=int(size or 0),
                        mtime_ns=round(last_modified.timestamp() * 1000) * 1_000_000)


@dataclass(frozen=True, slots=True)
class ReadInfo:
    """What the server said about an object it sent: length, ETag and server-side encryption."""

    size: int
    etag: str
    sse: str | None


def read_object(client, bucket: str, key: str, etag: str, sink, chunk_size: int = 1 << 20,
                version_id: str | None = None) -> ReadInfo:
    """Stream one object into `sink(bytes)`; If-Match makes a concurrent overwrite fail, not mix."""
    kwargs = {"Bucket": bucket, "Key": key}
    if etag:
        kwargs["IfMatch"] = f'"{etag}"'
    if version_id:
        kwargs["VersionId"] = version_id
    response = client.get_object(**kwargs)
    body = response["Body"]
    try:
        for chunk in body.iter_chunks(chunk_size):
            sink(chunk)
    finally:
        body.close()
    return ReadInfo(
        size=int(response.get("ContentLength", -1)),
        etag=str(response.get("ETag", "")).strip('"'),
        sse=response.get("ServerSideEncryption"),
    )


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """One object to read in a batch: key, expected ETag, optional version and where the bytes go."""

    key: str
    etag: str
    sink: Callable[[bytes], object]
    version_id: str | None = None


class Bucket:
    """One bucket through one client: listing and reading, each with a lean fast path.

    boto3 spends about a millisecond of CPU per request on events, endpoint rules and response
    parsing; for a DAG folder of small files that is most of the work. The fast path signs with
    objsync.s3.sigv4 (checked against botocore's signer) and runs many GETs at once on libcurl
    (objsync.s3.curl), making exactly one attempt each: any answer but a complete 200 (or any error)
    hands the request to the boto3 client, whose standard retry mode then applies.
    """

    def __init__(self, cfg: RemoteConfig, name: str, session=None) -> None:
        self.name = name
        self.fallbacks = 0
        self._cfg = cfg
        self._session = session or make_session(cfg)
        self._client = None
        self._transfers = None
        self._lock = threading.Lock()
        self._setup(cfg, name)

    def sibling(self) -> "Bucket":
        """Another reader of the same bucket with its own connections, sharing this one's session
        and addressing (on AWS, finding the addressing builds a whole client)."""
        twin = object.__new__(Bucket)
        twin.__dict__.update(self.__dict__)
        twin.fallbacks, twin._client, twin._transfers, twin._lock = 0, None, None, threading.Lock()
        return twin

    def _setup(self, cfg: RemoteConfig, name: str) -> None:
        credentials = self._session.get_credentials()
        endpoint = cfg.effective_endpoint()
        self._fast = cfg.fast_get and credentials is not None and _no_proxy_for(endpoint or "https://s3.amazonaws.com")
        if not self._fast:
            return
        if endpoint:
            # A custom endpoint is addressed path-style (see make_client), so no client is needed yet.
            parts = urlsplit(endpoint)
            self._bucket_path = f"/{name}"
            self._region = resolve_region(cfg, self._session)
        else:
            # AWS: let botocore resolve the addressing (virtual host, region, FIPS...) once.
            probe = self.client.generate_presigned_url("get_object", Params={"Bucket": name, "Key": "k"})
            parts = urlsplit(probe)
            self._bucket_path = parts.path[:-2]  # '/bucket' (path style) or '' (virtual host)
            self._region = self.client.meta.region_name
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._host = _host_header(parts)
        self._credentials = credentials
        self._transfer_cfg = TransferConfig(connect_timeout=cfg.connect_timeout, read_timeout=cfg.read_timeout,
                                            verify=cfg.verify is not False,
                                            ca_file=_ca_file(cfg, self._session) if parts.scheme == "https" else None)

    @property
    def client(self):
        """The boto3 client, built on first use: a pass that never falls back never pays for it."""
        if self._client is None:
            self._client = make_client(self._cfg, self._session)
        return self._client

    def list(self, prefix: str) -> list[RemoteObject]:
        """Every object under `prefix`, in the server's order."""
        if self._fast:
            found = self._list_fast(prefix)
            if found is not None:
                return found
            self.fallbacks += 1
        return list(list_prefix(self.client, self.name, prefix))

    def read(self, key: str, etag: str, size: int, sink, version_id: str | None = None) -> ReadInfo:
        """Deliver the object's bytes (of one version, when given) to `sink`; errors are botocore's.

        The fast attempt is held in memory until it is complete, so `sink` never sees the bytes of
        an attempt that failed half-way; large objects belong with read_many and a sink that can
        be thrown away.
        """
        if self._fast:
            chunks: list[bytes] = []
            (info,) = self.read_many([ReadRequest(key, etag, chunks.append, version_id)])
            if info is not None:
                for chunk in chunks:
                    sink(chunk)
                return info
        return self.read_slow(key, etag, sink, version_id)

    def read_slow(self, key: str, etag: str, sink, version_id: str | None = None) -> ReadInfo:
        """Read through the boto3 client alone, with its retries and its errors."""
        return read_object(self.client, self.name, key, etag, sink, version_id=version_id)

    def read_many(self, requests: Sequence[ReadRequest],
                  cancelled: Callable[[], bool] | None = None) -> list[ReadInfo | None]:
        """Read many objects at once on the fast path; None marks one to repeat with read_slow.

        A None request may have delivered some bytes to its sink before failing (or being cancelled).
        """
        if not self._fast:
            return [None] * len(requests)
        gets = []
        identity = self._identity()
        for r in requests:
            query = encode_query({"versionId": r.version_id}) if r.version_id else ""
            headers = {"If-Match": f'"{r.etag}"'} if r.etag else None
            gets.append(self._signed(identity, self._bucket_path + encode_path("/" + r.key), query, headers, r.sink))
        replies = self._run(gets, cancelled)
        out: list[ReadInfo | None] = []
        for reply in replies:
            if reply.ok:
                out.append(ReadInfo(size=int(reply.headers.get("content-length", -1)),
                                    etag=reply.headers.get("etag", "").strip('"'),
                                    sse=reply.headers.get("x-amz-server-side-encryption")))
            else:
                self.fallbacks += 1
                out.append(None)
        return out

    def _identity(self) -> tuple[Credentials, str]:
        """Credentials and a timestamp for one batch of requests: SigV4 accepts minutes of skew,
        and refreshing credentials take a lock, so neither is fetched per request."""
        frozen = self._credentials.get_frozen_credentials()
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token), amz_date()

    def _signed(self, identity: tuple[Credentials, str], path: str, query: str, headers: dict | None, sink) -> Get:
        creds, timestamp = identity
        lines = sign_get(creds, self._region, self._host, path, query, headers, timestamp)
        lines.append(f"Host: {self._host}")  # exactly the signed value, whatever the URL's spelling
        return Get(self._origin + path + (f"?{query}" if query else ""), lines, sink)

    def _run(self, gets: list[Get], cancelled: Callable[[], bool] | None = None) -> list[Reply]:
        with self._lock:
            if self._transfers is None:
                self._transfers = Transfers(self._cfg.concurrency, self._transfer_cfg)
            return self._transfers.run(gets, cancelled)

    def _list_fast(self, prefix: str, folders: list[str] | None = None) -> list[RemoteObject] | None:
        import io
        import xml.etree.ElementTree as ET

        from botocore.compat import unquote_str

        ns = "{http://s3.amazonaws.com/doc/2006-03-01/}"
        out: list[RemoteObject] = []
        token = None
        while True:
            params = {"list-type": "2", "prefix": prefix, "encoding-type": "url", "max-keys": "1000"}
            if folders is not None:
                params["delimiter"] = "/"  # one level: sub-folders come back in `folders`
            if token:
                params["continuation-token"] = token
            body = io.BytesIO()
            (reply,) = self._run([self._signed(self._identity(), self._bucket_path or "/", encode_query(params), None,
                                               body.write)])
            if not reply.ok:
                return None
            try:
                root = ET.fromstring(body.getvalue())
                out += [_listed(unquote_str(item.findtext(ns + "Key")), item.findtext(ns + "ETag") or "",
                                item.findtext(ns + "Size"), parse_timestamp(item.findtext(ns + "LastModified")))
                        for item in root.iter(ns + "Contents")]
                if folders is not None:
                    folders += [unquote_str(p.findtext(ns + "Prefix")) for p in root.iter(ns + "CommonPrefixes")]
                token = root.findtext(ns + "NextContinuationToken")
                truncated = root.findtext(ns + "IsTruncated") == "true"
            except (ET.ParseError, TypeError, ValueError):
                return None  # botocore's parser gets a chance, and reports what is wrong
            if not truncated:
                return out
            if not token:
                return None

    def close(self) -> None:
        """Close the fast path's connections."""
        with self._lock:
            if self._transfers is not None:
                self._transfers.close()
                self._transfers = None

    # -- one level of a prefix (manifest mode finds the top-level folders that have no manifest) -------

    def list_level(self, prefix: str) -> tuple[list[RemoteObject], list[str]]:
        """The objects directly under `prefix` and the sub-folders ('prefix/name/'), with Delimiter='/'."""
        if self._fast:
            folders: list[str] = []
            found = self._list_fast(prefix, folders)
            if found is not None:
                return found, folders
            self.fallbacks += 1
        return list_level(self.client, self.name, prefix)


def list_level(client, bucket: str, prefix: str) -> tuple[list[RemoteObject], list[str]]:
    """The objects directly under `prefix` and its sub-folder prefixes, through the boto3 client."""
    objects: list[RemoteObject] = []
    folders: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        objects += [_listed(item["Key"], item.get("ETag", ""), item.get("Size", 0), item["LastModified"])
                    for item in page.get("Contents", ())]
        folders += [p["Prefix"] for p in page.get("CommonPrefixes", ())]
    return objects, folders


def _ca_file(cfg: RemoteConfig, session) -> str | None:
    """The CA bundle the client would use: the configured path, else AWS_CA_BUNDLE, else certifi's."""
    from botocore.httpsession import get_cert_path

    if isinstance(cfg.verify, str):
        return cfg.verify
    return session._session.get_config_variable("ca_bundle") or get_cert_path(True)


def _host_header(parts) -> str:
    """The Host value botocore signs: lower-case name, IPv6 in brackets, port only when not the default."""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None and parts.port != {"http": 80, "https": 443}.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


def _no_proxy_for(url: str) -> bool:
    """True when no HTTP proxy applies to `url`; proxied set-ups keep botocore's transport."""
    from urllib.request import getproxies, proxy_bypass

    host = urlsplit(url).hostname or ""
    return not (getproxies() and not proxy_bypass(host))

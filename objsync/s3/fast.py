"""The fast path: GETs and listings signed here (SigV4) and run many at once on libcurl.

boto3 spends about a millisecond of CPU per request on events, endpoint rules and response
parsing; for a DAG folder of small files that is most of the work. The signer (objsync.s3.sigv4)
is checked against botocore's, and each request is made exactly once: the Bucket hands anything
but a complete 200 to the boto3 client, whose retries then apply.
"""

from __future__ import annotations

import io
import os
import re
import sys
import threading
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence
from urllib.parse import urlsplit

from objsync.model import RemoteObject
from objsync.s3.config import AnySession, RemoteConfig, aws_files, default_ca_bundle, resolve_region
from objsync.s3.curl import Get, Reply, TransferConfig, Transfers
from objsync.s3.errors import NotFound
from objsync.s3.pages import PAGE_KEYS, continuation, page_digest, parse_page, same_listing
from objsync.s3.records import ReadInfo, passed_without
from objsync.s3.sigv4 import Credentials, amz_date, encode_path, encode_query, sign_get



@dataclass(frozen=True)
class Route:
    """Where the fast path sends a bucket's requests, and with which credentials and TLS settings."""

    origin: str  # scheme://host[:port]
    host: str  # the Host header, exactly as signed
    bucket_path: str  # '/bucket' (path style) or '' (virtual host)
    region: str
    transfer: TransferConfig
    concurrency: int
    credentials: object = field(repr=False, compare=False)  # botocore's (it refreshes them), or static keys


def find_route(cfg: RemoteConfig, name: str, session: AnySession, client: Callable[[], object]) -> Route | None:
    """The route to bucket `name`, or None when the fast path must not be used.

    It is not used when turned off, without credentials, or when an HTTP proxy applies: proxied
    set-ups keep botocore's transport. `client()` gives the boto3 client, which on AWS resolves
    any addressing but the plain one (see `aws_origin`) once.
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
        region = resolve_region(cfg, session)
        origin = aws_origin(cfg, name, region, os.environ) if session.default_chain else None
        if origin is not None:
            parts, bucket_path = urlsplit(origin), ""
        else:
            c = client()
            parts = urlsplit(c.generate_presigned_url("get_object", Params={"Bucket": name, "Key": "k"}))
            bucket_path, region = parts.path[:-2], c.meta.region_name
    ca_file = (cfg.verify if isinstance(cfg.verify, str) else ca_bundle(session)) if parts.scheme == "https" else None
    transfer = TransferConfig(connect_timeout=cfg.connect_timeout, read_timeout=cfg.read_timeout,
                              verify=cfg.verify is not False, ca_file=ca_file)
    return Route(f"{parts.scheme}://{parts.netloc}", host_header(parts), bucket_path, region, transfer,
                 cfg.concurrency, credentials)


# AWS_* variables that change nothing in where botocore sends a bucket's requests on AWS.
_NO_ADDRESSING = frozenset({
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ACCOUNT_ID",
    "AWS_CREDENTIAL_EXPIRATION", "AWS_ROLE_ARN", "AWS_ROLE_SESSION_NAME", "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_STS_REGIONAL_ENDPOINTS", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_EC2_METADATA_DISABLED",
    "AWS_METADATA_SERVICE_TIMEOUT", "AWS_METADATA_SERVICE_NUM_ATTEMPTS", "AWS_REGION", "AWS_DEFAULT_REGION",
    "AWS_CA_BUNDLE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE"})
_AWS_PARTITION = re.compile(r"(us|eu|ap|sa|ca|me|af|il|mx)-\w+-\d+")  # botocore's regionRegex of "aws"
_PLAIN_BUCKET = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")


def aws_origin(cfg: RemoteConfig, name: str, region: str, env: Mapping[str, str]) -> str | None:
    """The address botocore presigns for bucket `name` on AWS, when it is the plain one; else None."""
    # Building an S3 client takes about as long as loading botocore. The plain case needs none: HTTPS,
    # the aws partition, a lower-case DNS name without dots or '--' (S3 Express, aliases), and no config
    # file or variable that could move the endpoint (FIPS, dual-stack, an endpoint URL, AWS_DATA_PATH).
    if not (cfg.use_ssl and _AWS_PARTITION.fullmatch(region) and _PLAIN_BUCKET.fullmatch(name)) or "--" in name:
        return None
    if any(var.startswith("AWS_") and var not in _NO_ADDRESSING for var in env) or aws_files(env):
        return None
    return f"https://{name}.s3.amazonaws.com"


def ca_bundle(session: AnySession) -> str:
    """The CA bundle the client would use: AWS_CA_BUNDLE (or the profile's), else certifi's."""
    return session.ca_bundle() or default_ca_bundle()


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
    if not proxy_settings(os.environ):
        return True
    from urllib.request import getproxies, proxy_bypass

    host = urlsplit(url).hostname or ""
    return not (getproxies() and not proxy_bypass(host))


def proxy_settings(env: Mapping[str, str]) -> bool:
    """False when urllib would find no proxy, told without loading urllib.request (and http.client, email):
    on Linux urllib reads only `*_proxy` variables; macOS and Windows also keep system settings."""
    if sys.platform == "darwin" or os.name == "nt":
        return True
    return any(value and name.lower().endswith("_proxy") for name, value in env.items())


@dataclass(frozen=True, slots=True)
class FastGet:
    """One GET of a batch: the object, and the callable that takes its body."""

    key: str
    etag: str
    version_id: str | None
    write: Callable[[bytes], object]
    span: tuple[int, int] | None = None  # the bytes [start, end) only


def missing(reply: Reply, key: str) -> NotFound | None:
    """The error of a 404 that says the object (or version) does not exist; None for any other answer."""
    if reply.status == 404 and reply.error is None:
        code = re.search(rb"<Code>(NoSuchKey|NoSuchVersion)</Code>", reply.body)
        if code:
            return NotFound(code.group(1).decode(), key)
    return None


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
            headers = {"If-Match": f'"{g.etag}"'} if g.etag else {}
            expect = (200,)
            if g.span is not None:
                headers["Range"] = f"bytes={g.span[0]}-{g.span[1] - 1}"
                # A server may answer a range with the whole object; from offset 0 that is the same bytes.
                expect = (206,) if g.span[0] else (200, 206)
            signed.append(self._signed(identity, self.route.bucket_path + encode_path("/" + g.key), query,
                                       headers or None, g.write, expect))
        return self._run(signed, cancelled)

    def list(self, prefix: str, level: bool = False,
             needs: str | None = None) -> tuple[list[RemoteObject], list[str]] | None:
        """Every object under `prefix` (or, with `level`, those directly under it and the sub-folders;
        `needs`: see Bucket.list_level).

        None when any page fails or cannot be parsed: botocore then gets its chance, and reports.
        """
        found = self._list(prefix, level, needs)
        return None if found is None else found[:2]

    def same(self, prefix: str, known: str) -> bool | None:
        """Whether the listing is still the one `known` fingerprints, read up to its first page that differs.

        A listing is fingerprinted page by page, from the bytes the server sent: a poll whose pages
        are those of `known` parses nothing. None when a page fails.
        """
        return same_listing(self._digested, prefix, known)

    def _digested(self, prefix: str, token: str | None) -> tuple[tuple[()], str | None, str] | None:
        """One page's digest and the next page's token, found without parsing it; None when it failed."""
        body = self._page(prefix, False, token)
        if body is None:
            return None
        truncated, token = continuation(body)
        if truncated and not token:
            return None
        return (), token if truncated else None, page_digest(body)

    def page(self, prefix: str, token: str | None) -> tuple[list[RemoteObject], str | None, str] | None:
        """One page of a listing: its objects, the next page's token (None after the last) and its digest.

        None when the page failed or cannot be parsed.
        """
        body = self._page(prefix, False, token)
        parsed = None if body is None else parse_page(body)
        if parsed is None:
            return None
        objects, _, token, truncated = parsed
        if truncated and not token:
            return None
        return objects, token if truncated else None, page_digest(body)

    def _list(self, prefix: str, level: bool,
              needs: str | None = None) -> tuple[list[RemoteObject], list[str], list[str]] | None:
        """Objects, sub-folders and each page's digest; None when a page fails or cannot be parsed."""
        out: list[RemoteObject] = []
        folders: list[str] = []
        digests: list[str] = []
        token = None
        while True:
            body = self._page(prefix, level, token)
            parsed = None if body is None else parse_page(body)
            if parsed is None:
                return None
            digests.append(page_digest(body))
            page, here, token, truncated = parsed
            out += page
            folders += here
            ends = [o.key for o in page[-1:]] + here[-1:]
            if not truncated or (needs is not None and passed_without(needs, folders, ends)):
                return out, folders, digests
            if not token:
                return None

    def _page(self, prefix: str, level: bool, token: str | None) -> bytes | None:
        """The body of one page of a ListObjectsV2, or None when it did not come back whole."""
        params = {"list-type": "2", "prefix": prefix, "encoding-type": "url", "max-keys": str(PAGE_KEYS)}
        if level:
            params["delimiter"] = "/"
        if token:
            params["continuation-token"] = token
        body = io.BytesIO()
        (reply,) = self._run([self._signed(self._identity(), self.route.bucket_path or "/", encode_query(params),
                                           None, body.write)])
        return body.getvalue() if reply.ok else None

    def _identity(self) -> tuple[Credentials, str]:
        """Credentials and a timestamp for one batch of requests: SigV4 accepts minutes of skew,
        and refreshing credentials take a lock, so neither is fetched per request."""
        frozen = self.route.credentials.get_frozen_credentials()
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token), amz_date()

    def _signed(self, identity: tuple[Credentials, str], path: str, query: str, headers: dict | None, sink,
                expect: tuple[int, ...] = (200,)) -> Get:
        creds, timestamp = identity
        lines = sign_get(creds, self.route.region, self.route.host, path, query, headers, timestamp)
        lines.append(f"Host: {self.route.host}")  # exactly the signed value, whatever the URL's spelling
        return Get(self.route.origin + path + (f"?{query}" if query else ""), lines, sink, expect)

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

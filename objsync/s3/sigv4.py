"""AWS Signature Version 4 for bodiless S3 GETs: the hot path's signer, kept byte-identical to botocore's.

botocore derives the signing key (four HMACs) and rebuilds its header maps for every request; for
a DAG folder of small files that was a fifth of a worker's CPU. Here the key is derived once a day
per secret and region, and a GET's canonical request is a single format string.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import quote

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()  # what botocore signs for a bodiless S3 request
_ALGORITHM = "AWS4-HMAC-SHA256"


@dataclass(frozen=True)
class Credentials:
    """One frozen set of AWS credentials; `token` is set for temporary (STS) credentials."""

    access_key: str
    secret_key: str
    token: str | None = None

    def get_frozen_credentials(self) -> "Credentials":
        """Static keys are their own frozen copy; the fast path asks botocore's credentials for one."""
        return self

    def __repr__(self) -> str:  # never print the secret
        return f"Credentials(access_key={self.access_key!r}, secret_key='***', token={'***' if self.token else None})"


@lru_cache(maxsize=16)
def signing_key(secret_key: str, date: str, region: str, service: str = "s3") -> bytes:
    """The derived key for one day (YYYYMMDD), region and service."""
    key = ("AWS4" + secret_key).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def encode_path(key_path: str) -> str:
    """Percent-encode an object path for both the URL and the canonical request (S3 does not re-encode)."""
    return quote(key_path, safe="/~")


def encode_query(params: dict[str, str]) -> str:
    """The canonical query string, which is also sent as the URL's query so the two never differ."""
    return "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(params.items()))


def amz_date(now: float | None = None) -> str:
    """The request timestamp in SigV4's basic ISO 8601 form, e.g. 20261125T031500Z."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))


def sign_get(creds: Credentials, region: str, host: str, path: str, query: str = "",
             headers: dict[str, str] | None = None, timestamp: str | None = None) -> list[str]:
    """The header lines ('Name: value') that sign a GET of `path`?`query` on `host`, Authorization last.

    `path` and `query` must already be encoded (encode_path/encode_query); `headers` are extra
    headers to send and sign, such as If-Match.
    """
    timestamp = timestamp or amz_date()
    signed = {"host": host, "x-amz-content-sha256": EMPTY_SHA256, "x-amz-date": timestamp}
    if creds.token:
        signed["x-amz-security-token"] = creds.token
    if headers:
        signed.update((name.lower(), " ".join(value.split())) for name, value in headers.items())
    names = sorted(signed)
    canonical_headers = "".join(f"{name}:{signed[name]}\n" for name in names)
    signed_names = ";".join(names)
    canonical = f"GET\n{path}\n{query}\n{canonical_headers}\n{signed_names}\n{EMPTY_SHA256}"
    scope = f"{timestamp[:8]}/{region}/s3/aws4_request"
    to_sign = f"{_ALGORITHM}\n{timestamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    signature = hmac.new(signing_key(creds.secret_key, timestamp[:8], region), to_sign.encode(),
                         hashlib.sha256).hexdigest()
    lines = [f"{name}: {signed[name]}" for name in names if name != "host"]
    lines.append(f"Authorization: {_ALGORITHM} Credential={creds.access_key}/{scope}, "
                 f"SignedHeaders={signed_names}, Signature={signature}")
    return lines

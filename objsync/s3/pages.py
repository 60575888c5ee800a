"""Pages of a ListObjectsV2: parsed and digested as the server sent them, and a listing read page by page."""

from __future__ import annotations

import re
from typing import Callable, Iterable, Iterator
from urllib.parse import unquote_plus

from objsync.model import RemoteObject
from objsync.s3.config import parse_timestamp
from objsync.s3.records import listed

_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
PAGE_KEYS = 1000  # keys a listing page holds: S3's largest
PAGES = "pages:"  # a fingerprint made of page digests
DIGEST = 32  # hex characters of one page's digest
_TOKENS = re.compile(rb"<(?:Next)?ContinuationToken>[^<]*</(?:Next)?ContinuationToken>")
_NEXT = re.compile(rb"<IsTruncated>true</IsTruncated>|<NextContinuationToken>([^<]*)</NextContinuationToken>")
_ENTITIES = {"&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&apos;": "'"}


def parse_page(body: bytes) -> tuple[list[RemoteObject], list[str], str | None, bool] | None:
    """A ListObjectsV2 page: its objects, sub-folders, next token and whether more follow; None if unreadable."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(body)
        page = [listed(unquote_plus(item.findtext(_NS + "Key")), item.findtext(_NS + "ETag") or "",
                       item.findtext(_NS + "Size"), parse_timestamp(item.findtext(_NS + "LastModified")))
                for item in root.iter(_NS + "Contents")]
        here = [unquote_plus(p.findtext(_NS + "Prefix")) for p in root.iter(_NS + "CommonPrefixes")]
        return page, here, root.findtext(_NS + "NextContinuationToken"), root.findtext(_NS + "IsTruncated") == "true"
    except (ET.ParseError, TypeError, ValueError):
        return None


def page_digest(body: bytes) -> str:
    """A listing page's digest, without its continuation tokens, which a server may vary between equal pages."""
    import xxhash

    return xxhash.xxh3_128_hexdigest(_TOKENS.sub(b"", body))


def continuation(body: bytes) -> tuple[bool, str | None]:
    """Whether a page is truncated, and its continuation token, found without parsing the page."""
    truncated, token = False, None
    for m in _NEXT.finditer(body):
        if m.group(1) is None:
            truncated = True
        else:
            token = re.sub("&[a-z]+;", lambda e: _ENTITIES.get(e.group(), e.group()), m.group(1).decode())
    return truncated, token


def objects_digest(objects: Iterable[RemoteObject]) -> str:
    """A page's digest from its objects, for a page read without its bytes (through boto3).

    It is not the digest of the page's bytes, so a listing read the other way next time counts as changed once.
    """
    import xxhash

    digest = xxhash.xxh3_128()
    for o in objects:
        digest.update(f"{o.key}\0{o.etag}\0{o.size}\0{o.mtime_ns}\n".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


PageReader = Callable[[str, "str | None"], "tuple[list[RemoteObject], str | None, str]"]


def same_listing(read: Callable[[str, str | None], tuple[object, str | None, str] | None], prefix: str,
                 known: str) -> bool | None:
    """Whether the listing is still the one `known` fingerprints, read up to its first page that differs.

    `read` is a PageReader (its objects are not looked at), or gives None when a page fails: so does this.
    """
    if not known.startswith(PAGES):
        return False
    old, token, at = known[len(PAGES):], None, 0
    while True:
        page = read(prefix, token)
        if page is None:
            return None
        _, token, digest = page
        if old[at:at + DIGEST] != digest:
            return False
        at += DIGEST
        if token is None:
            return at == len(old)


class Pages:
    """One listing, read a page at a time as it is iterated, so that no more than a page is held.

    `read(prefix, token)` gives a page's objects, the next page's token (None after the last) and the
    page's digest. Once the last page is read, `fingerprint` is the listing's: its pages' digests.
    """

    def __init__(self, read: PageReader, prefix: str) -> None:
        self.read, self.prefix = read, prefix
        self.fingerprint: str | None = None  # known once the last page is read

    def __iter__(self) -> Iterator[RemoteObject]:
        token: str | None = None
        digests: list[str] = []
        while True:
            objects, token, digest = self.read(self.prefix, token)
            digests.append(digest)
            yield from objects
            if token is None:
                break
        self.fingerprint = PAGES + "".join(digests)

"""What a failed S3 request means, in one line a user can act on; no credentials ever shown."""

from __future__ import annotations

import sys


class NotFound(Exception):
    """An object (or version) the server says does not exist, on the fast path: as final as botocore's 404."""

    def __init__(self, code: str, key: str) -> None:
        super().__init__(f"{code} (HTTP 404) {key} does not exist")
        self.code = code


def _botocore_loaded() -> bool:
    """No botocore error can exist before botocore is loaded, and a pass on the fast path never loads it."""
    return "botocore.exceptions" in sys.modules


def describe_error(exc: BaseException) -> str:
    """A one-line, credential-free description of a botocore/transport error."""
    if isinstance(exc, NotFound):
        return str(exc)
    if not _botocore_loaded():
        return f"{type(exc).__name__}: {exc}"
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, SSLError

    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = err.get("Code") or status
        message = err.get("Message") or ""
        return f"{code} (HTTP {status}) {message}".strip()
    if isinstance(exc, NoCredentialsError):
        return ("no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                "AWS_PROFILE, or run where an instance or pod role is available")
    if isinstance(exc, SSLError):
        return (f"{type(exc).__name__}: {exc}; if the endpoint's certificate comes from a private CA, "
                f"point AWS_CA_BUNDLE at that CA's PEM file")
    if isinstance(exc, EndpointConnectionError):
        return f"cannot connect to the S3 endpoint: {exc}"
    return f"{type(exc).__name__}: {exc}"


def is_missing(exc: BaseException) -> bool:
    """True when `exc` says the object (or version) does not exist; a missing bucket is not that."""
    if isinstance(exc, NotFound):
        return True
    if not _botocore_loaded():
        return False
    from botocore.exceptions import ClientError

    if not isinstance(exc, ClientError):
        return False
    code = exc.response.get("Error", {}).get("Code")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    # A HEAD has no body, so botocore names its error by the status alone: "404".
    return code in ("NoSuchKey", "NoSuchVersion", "404") or (not code and status == 404)

"""How to reach S3: the URI of a location, client settings, and the boto3 session and client."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any, Mapping, Union
from urllib.parse import urlsplit

from objsync.s3.sigv4 import Credentials

DEFAULT_REGION = "us-east-1"


# Downloads in flight in each running batch by default: behind 20 ms a request, a 10,000-file cold pull
# took 9.7 s at 64 against 12.3 s at 32 (benchmarks/results/dags10k-20ms-sweep-2026-11-30.md). Since
# batches hold twice this many files, 64 to 256 all come within 10 % of 7.5 s, the server's pace on
# this machine (dags10k-20ms-sweep-2026-11-30-161935.md).
IN_FLIGHT = 64


@dataclass(frozen=True)
class Location:
    """An `s3://bucket/prefix` URI; the prefix is kept as given (normalization is the planner's job)."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, uri: str) -> "Location":
        """Parse `s3://bucket[/prefix]`, raising ValueError with a readable reason."""
        parts = urlsplit(uri)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"{uri!r} is not an S3 URI; expected s3://BUCKET[/PREFIX]")
        if parts.query or parts.fragment:
            raise ValueError(f"{uri!r} has a '?' or '#' part; S3 URIs take neither")
        return cls(bucket=parts.netloc, prefix=parts.path.lstrip("/"))

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


@dataclass(frozen=True)
class RemoteConfig:
    """Everything needed to build an S3 client; picklable, so workers can build their own."""

    endpoint_url: str | None = None
    region: str | None = None
    use_ssl: bool = True
    verify: bool | str | None = None
    max_attempts: int = 5
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    max_pool_connections: int = 16
    profile: str | None = None
    fast_get: bool = True  # GETs skip botocore's per-request machinery (see Bucket)
    concurrency: int = IN_FLIGHT  # fast-path transfers in flight at once, per process

    def effective_endpoint(self) -> str | None:
        """The endpoint URL with a scheme, chosen by --disable-ssl when the user gave none."""
        if not self.endpoint_url:
            return None
        if "://" in self.endpoint_url:
            return self.endpoint_url
        return ("https://" if self.use_ssl else "http://") + self.endpoint_url


@dataclass(frozen=True)
class Session:
    """A boto3 session and the botocore session under it, which boto3 holds privately.

    Settings such as the CA bundle are read from `core`; clients are built one at a time under
    `lock`, because a boto3 session is not safe to build clients from on two threads at once.
    """

    boto: Any
    core: Any
    lock: Any = field(default_factory=threading.Lock, compare=False, repr=False)
    # Built here on the default chain, so only the environment and the AWS files configure it (not, say,
    # an Airflow connection's client settings).
    default_chain: bool = field(default=False, compare=False)

    @property
    def region(self) -> str | None:
        """The region of the AWS config files or environment, if any."""
        return self.boto.region_name

    def credentials(self):
        """botocore's (refreshing) credentials, or None when the chain finds none."""
        return self.boto.get_credentials()

    def ca_bundle(self) -> str | None:
        """The CA bundle configured for the session (AWS_CA_BUNDLE or ca_bundle in the profile)."""
        return self.core.get_config_variable("ca_bundle")


class EnvSession:
    """Static keys from the environment (see `env_keys`), with region and CA bundle read as botocore reads them;
    botocore loads only when a boto3 client is built, which a pass served by the fast path never does."""

    default_chain = True

    def __init__(self, cfg: RemoteConfig, keys: Credentials, env: Mapping[str, str]) -> None:
        self._cfg, self._keys = cfg, keys
        self.region: str | None = env.get("AWS_DEFAULT_REGION")
        self._ca_bundle: str | None = env.get("AWS_CA_BUNDLE")
        self._full: Session | None = None
        self._building = threading.Lock()
        self.lock = threading.Lock()

    def credentials(self) -> Credentials:
        return self._keys

    def ca_bundle(self) -> str | None:
        return self._ca_bundle

    @property
    def boto(self):
        return self._botocore().boto

    @property
    def core(self):
        return self._botocore().core

    def _botocore(self) -> Session:
        with self._building:
            if self._full is None:
                self._full = botocore_session(self._cfg)
            return self._full


AnySession = Union[Session, EnvSession]

# botocore's defaults for the files that could name a region, a CA bundle or other credentials.
_FILES = (("AWS_CONFIG_FILE", "~/.aws/config"), ("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials"))


def env_keys(cfg: RemoteConfig, env: Mapping[str, str]) -> Credentials | None:
    """AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, when botocore would use exactly these and read nothing else."""
    # botocore asks the environment first, but a named profile, an expiry (refreshing keys) or an AWS config
    # or credentials file (parsed even then, and perhaps rejected) can change its answer: then None.
    if cfg.profile is not None or "AWS_PROFILE" in env or "AWS_DEFAULT_PROFILE" in env:
        return None
    access, secret = env.get("AWS_ACCESS_KEY_ID", ""), env.get("AWS_SECRET_ACCESS_KEY", "")
    if not (access and secret) or env.get("AWS_CREDENTIAL_EXPIRATION") or aws_files(env):
        return None
    token = env.get("AWS_SECURITY_TOKEN") or env.get("AWS_SESSION_TOKEN") or None  # botocore's order
    return Credentials(access, secret, token)


def aws_files(env: Mapping[str, str]) -> bool:
    """True when the AWS config file or the shared credentials file exists (where botocore looks)."""
    return any(os.path.isfile(os.path.expanduser(os.path.expandvars(env[var] if var in env else default)))
               for var, default in _FILES)


def make_session(cfg: RemoteConfig) -> AnySession:
    """A session on the default credential chain (or the named profile); botocore loads only when needed."""
    keys = env_keys(cfg, os.environ)
    return EnvSession(cfg, keys, os.environ) if keys is not None else botocore_session(cfg)


def botocore_session(cfg: RemoteConfig) -> Session:
    """A boto3 session on botocore's full credential chain (or the named profile)."""
    import boto3
    import botocore.session

    core = botocore.session.get_session()
    # dateutil's general parser took most of the CPU of listing 10,000 keys; S3's ISO 8601
    # timestamps parse with the standard library, anything else falls back to botocore's parser.
    core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=parse_timestamp)
    return Session(boto3.session.Session(botocore_session=core, profile_name=cfg.profile), core, default_chain=True)


def default_ca_bundle() -> str:
    """The CA bundle botocore trusts when none is configured: certifi's, else the one botocore ships."""
    try:
        from certifi import where
    except ImportError:
        from botocore.httpsession import get_cert_path

        return get_cert_path(True)
    return where()


def parse_timestamp(value):
    """Parse S3's '2024-05-01T12:00:00.000Z' quickly; other forms go to botocore's own parser."""
    from datetime import datetime, timezone

    if isinstance(value, str) and len(value) in (20, 24) and value.endswith("Z") and value[10] == "T":
        try:
            return datetime.fromisoformat(value[:-1]).replace(tzinfo=timezone.utc)
        except ValueError:
            pass
    from botocore.utils import parse_timestamp as slow

    return slow(value)


def make_client(cfg: RemoteConfig, session: AnySession | None = None):
    """Build a boto3 S3 client with standard retries and no instance-metadata call for the region."""
    from botocore.config import Config

    session = session or make_session(cfg)
    region = resolve_region(cfg, session)
    endpoint = cfg.effective_endpoint()
    config = Config(
        region_name=region,
        signature_version="s3v4",
        retries={"mode": "standard", "max_attempts": cfg.max_attempts},
        connect_timeout=cfg.connect_timeout,
        read_timeout=cfg.read_timeout,
        max_pool_connections=cfg.max_pool_connections,
        s3={"addressing_style": "path" if endpoint else "auto"},
        tcp_keepalive=True,
    )
    with session.lock:
        return session.boto.client("s3", endpoint_url=endpoint, use_ssl=cfg.use_ssl, verify=cfg.verify,
                                   config=config)


def resolve_region(cfg: RemoteConfig, session: AnySession) -> str:
    """The flag, else the AWS config; with neither, us-east-1 (botocore follows AWS's redirects).

    Only an explicit or configured region counts, so no instance-metadata lookup is ever made.
    """
    return cfg.region or session.region or DEFAULT_REGION


def endpoint_from_env(env: Mapping[str, str]) -> str | None:
    """The endpoint boto3 would use from the environment: AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL."""
    return env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None


def region_from_env(env: Mapping[str, str]) -> str | None:
    """The region from AWS_REGION, then AWS_DEFAULT_REGION."""
    return env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None

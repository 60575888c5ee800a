"""`ObjsyncDagBundle`: one Airflow 3 DAG bundle per repo that `objsync push` publishes, versioned by manifest id.

A version's files live in `versions_dir/<manifest id>`, where Airflow's version locks and
stale-version cleanup expect them. The DAG processor's bundle follows the repo's current
manifest; a worker's bundle is pinned to the version its run was created with, and rebuilds it
from the manifest history when this host no longer has it.
"""

from __future__ import annotations

import inspect
import logging
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from airflow.dag_processing.bundles import base as airflow_bundles
from airflow.dag_processing.bundles.base import BaseDagBundle

from objsync.layout import check_repo_name
from objsync.manifest import Manifest
from objsync.pull.versionstore import VersionStore, current_version, stored_manifest
from objsync.pull.versiontree import VersionError
from objsync.s3.bucket import Bucket
from objsync.s3.config import Location, RemoteConfig, Session, endpoint_from_env, region_from_env
from objsync.signing import keys_from_items

BundleVersion = getattr(airflow_bundles, "BundleVersion", None)  # Airflow 3.3+; 3.1 and 3.2 take a plain string

log = logging.getLogger("objsync.airflow")
_BASE_ARGS = frozenset(inspect.signature(BaseDagBundle.__init__).parameters)


class ObjsyncDagBundle(BaseDagBundle):
    """DAGs from `s3://bucket/prefix/<repo>/`, one version per manifest that `objsync push` wrote."""

    supports_versioning = True

    def __init__(self, *, url: str, repo: str, endpoint_url: str | None = None, region: str | None = None,
                 aws_conn_id: str | None = None, verify_keys: str | list[str] | None = None, **kwargs: Any) -> None:
        # Airflow's own arguments pass through; one this Airflow does not know (version_data before 3.3) is dropped.
        super().__init__(**{k: v for k, v in kwargs.items() if k in _BASE_ARGS})
        self.url = url
        self.location = Location.parse(url)
        self.repo = check_repo_name(repo)
        self.endpoint_url, self.region, self.aws_conn_id = endpoint_url, region, aws_conn_id
        # PEM texts or key files; else OBJSYNC_VERIFY_KEYS. Given: only signed versions are built or run.
        self.verify_keys = keys_from_items(verify_keys, os.environ)
        self._store: VersionStore | None = None  # built on first use: `path` and `view_url` need no S3 client
        self._current: str | None = None  # the version this object last refreshed to
        self._data: tuple[str | None, dict[str, str] | None] = (None, None)  # version data, kept per version

    # -- what Airflow reads ----------------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The tree of this bundle's version: the pinned one, else the current one on this host."""
        return self.versions_dir / (self._version() or "none")

    def get_current_version(self):
        mid = self._version()
        if mid is None or BundleVersion is None:
            return mid
        return BundleVersion(mid, self._version_data(mid))

    def view_url(self, version: str | None = None) -> str | None:
        """The commit a version was pushed from, on the repo's web page, when the push recorded both."""
        mid = version or self._version()
        if not mid:
            return None
        m = self._versions().manifest(mid)
        return m.commit_url() if m is not None else None

    # -- getting versions ------------------------------------------------------------------------

    def initialize(self) -> None:
        with self.lock():
            self._versions().tidy()
            if self.version:
                self._versions().ensure(self.version)
            else:
                try:
                    self._refresh()
                except VersionError as exc:
                    if current_version(self.base_dir) is None:
                        raise
                    log.error("bundle %s: %s", self.name, exc)
        super().initialize()

    def refresh(self) -> None:
        if self.version:
            return  # a pinned bundle (a task of an older run) never moves
        with self.lock():
            self._refresh()  # a VersionError reaches Airflow, which logs it and keeps the version it had

    def _refresh(self) -> None:
        self._current = self._versions().refresh()
        _track(self.name, self._current)

    def _version(self) -> str | None:
        return self.version or self._current or current_version(self.base_dir)

    def _version_data(self, mid: str) -> dict[str, str] | None:
        """The commit a version came from, for Airflow 3.3+ to keep with each DAG version (no request)."""
        if self._data[0] != mid:
            self._data = (mid, _commit_data(stored_manifest(self.base_dir, self.repo, mid)))
        return self._data[1]

    def _versions(self) -> VersionStore:
        if self._store is None:
            remote, session = self._remote()
            bucket = Bucket(remote, self.location.bucket, session)
            self._store = VersionStore(bucket, remote, self.location, self.repo, self.base_dir, self.versions_dir,
                                       self.verify_keys)
        return self._store

    def _remote(self) -> tuple[RemoteConfig, Session | None]:
        """Endpoint, region and credentials: the kwargs, else the Airflow connection, else the AWS environment."""
        endpoint, region, session = self.endpoint_url, self.region, None
        if self.aws_conn_id:
            endpoint, region, session = _connection(self.aws_conn_id, endpoint, region)
        remote = RemoteConfig(endpoint_url=endpoint or endpoint_from_env(os.environ),
                              region=region or region_from_env(os.environ), concurrency=32, max_pool_connections=34)
        return remote, session


def _commit_data(m: Manifest | None) -> dict[str, str] | None:
    """{"commit", "commit_url"} of a manifest, as far as the push recorded them."""
    if m is None or not m.commit:
        return None
    url = m.commit_url()
    return {"commit": m.commit, "commit_url": url} if url else {"commit": m.commit}


def _track(name: str, mid: str) -> None:
    """Mark `mid` as just used in Airflow's version tracking, as a task's version lock does.

    Airflow's stale-version cleanup only sees tracked versions: without this, every version the DAG
    processor builds would stay on its disk for ever, and the current one is always the newest.
    """
    tracking_file = getattr(airflow_bundles, "get_bundle_tracking_file", None)
    if tracking_file is None:  # an Airflow without stale-version cleanup
        return
    path = tracking_file(bundle_name=name, version=mid)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written in place, as Airflow itself does: cleanup takes every name in that folder for a version.
    path.write_text(datetime.now(timezone.utc).isoformat())


def _connection(conn_id: str, endpoint: str | None, region: str | None) -> tuple[str | None, str | None, Session]:
    """Endpoint, region and a boto3 session from an Airflow AWS connection (the Amazon provider's hook)."""
    try:
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
    except ImportError:
        raise ImportError(f"aws_conn_id={conn_id!r} needs Airflow's Amazon provider (apache-airflow-providers-amazon, "
                          f"which objsync's airflow extra installs); or leave aws_conn_id out to use the AWS "
                          f"environment") from None
    import botocore.session

    hook = AwsBaseHook(aws_conn_id=conn_id, client_type="s3")
    wrapper = hook.conn_config
    region = region or wrapper.region_name
    # Older providers have no per-service endpoint: the connection's endpoint_url then serves S3 too.
    per_service = getattr(wrapper, "get_service_endpoint_url", None)
    endpoint = endpoint or (per_service("s3") if per_service else wrapper.endpoint_url)
    # The hook's session carries the connection's credentials; a plain botocore session only answers
    # configuration questions such as the CA bundle.
    return endpoint, region, Session(hook.get_session(region_name=region), botocore.session.get_session())

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
from pathlib import Path
from typing import Any

from airflow.dag_processing.bundles.base import BaseDagBundle

from objsync.layout import check_repo_name
from objsync.pull.versionstore import VersionStore, current_version
from objsync.pull.versiontree import VersionError
from objsync.s3.bucket import Bucket
from objsync.s3.config import Location, RemoteConfig, Session, endpoint_from_env, region_from_env

try:
    from airflow.dag_processing.bundles.base import BundleVersion
except ImportError:  # Airflow 3.1 and 3.2 take a plain string
    BundleVersion = None

log = logging.getLogger("objsync.airflow")
_BASE_ARGS = frozenset(inspect.signature(BaseDagBundle.__init__).parameters)


class ObjsyncDagBundle(BaseDagBundle):
    """DAGs from `s3://bucket/prefix/<repo>/`, one version per manifest that `objsync push` wrote."""

    supports_versioning = True

    def __init__(self, *, url: str, repo: str, endpoint_url: str | None = None, region: str | None = None,
                 aws_conn_id: str | None = None, **kwargs: Any) -> None:
        # Airflow's own arguments pass through; one this Airflow does not know (version_data before 3.3) is dropped.
        super().__init__(**{k: v for k, v in kwargs.items() if k in _BASE_ARGS})
        self.url = url
        self.location = Location.parse(url)
        self.repo = check_repo_name(repo)
        self.endpoint_url, self.region, self.aws_conn_id = endpoint_url, region, aws_conn_id
        self._store: VersionStore | None = None  # built on first use: `path` and `view_url` need no S3 client

    # -- what Airflow reads ----------------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The tree of this bundle's version: the pinned one, else the current one on this host."""
        mid = self.version or current_version(self.base_dir)
        return self.versions_dir / (mid or "none")

    def get_current_version(self):
        mid = self.version or current_version(self.base_dir)
        if mid is None or BundleVersion is None:
            return mid
        return BundleVersion(mid)

    def view_url(self, version: str | None = None) -> str | None:
        """The commit a version was pushed from, on the repo's web page, when the push recorded both."""
        mid = version or self.version or current_version(self.base_dir)
        if not mid:
            return None
        m = self._versions().manifest(mid)
        return m.commit_url() if m is not None else None

    # -- getting versions ------------------------------------------------------------------------

    def initialize(self) -> None:
        with self.lock():
            if self.version:
                self._versions().ensure(self.version)
            else:
                try:
                    self._versions().refresh()
                except VersionError as exc:
                    if current_version(self.base_dir) is None:
                        raise
                    log.error("%s", exc, extra={"bundle": self.name, "repo": self.repo})
        super().initialize()

    def refresh(self) -> None:
        if self.version:
            return  # a pinned bundle (a task of an older run) never moves
        with self.lock():
            try:
                self._versions().refresh()
            except VersionError as exc:
                log.error("%s", exc, extra={"bundle": self.name, "repo": self.repo})
                raise

    def _versions(self) -> VersionStore:
        if self._store is None:
            remote, session = self._remote()
            bucket = Bucket(remote, self.location.bucket, session)
            self._store = VersionStore(bucket, remote, self.location, self.repo, self.base_dir, self.versions_dir)
        return self._store

    def _remote(self) -> tuple[RemoteConfig, Session | None]:
        """Endpoint, region and credentials: the kwargs, else the Airflow connection, else the AWS environment."""
        endpoint, region, session = self.endpoint_url, self.region, None
        if self.aws_conn_id:
            endpoint, region, session = _connection(self.aws_conn_id, endpoint, region)
        remote = RemoteConfig(endpoint_url=endpoint or endpoint_from_env(os.environ),
                              region=region or region_from_env(os.environ), concurrency=32, max_pool_connections=34)
        return remote, session


def _connection(conn_id: str, endpoint: str | None, region: str | None) -> tuple[str | None, str | None, Session]:
    """Endpoint, region and a boto3 session from an Airflow AWS connection (the Amazon provider's hook)."""
    try:
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
    except ImportError:
        raise ImportError(f"aws_conn_id={conn_id!r} needs Airflow's Amazon provider: pip install "
                          f"'objsync[airflow]' (apache-airflow-providers-amazon), or leave aws_conn_id out to use "
                          f"the AWS environment") from None
    import botocore.session

    hook = AwsBaseHook(aws_conn_id=conn_id, client_type="s3")
    wrapper = hook.conn_config
    region = region or wrapper.region_name
    endpoint = endpoint or wrapper.get_service_endpoint_url("s3")
    # The hook's session carries the connection's credentials; a plain botocore session only answers
    # configuration questions such as the CA bundle.
    return endpoint, region, Session(hook.get_session(region_name=region), botocore.session.get_session())

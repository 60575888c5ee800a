"""Shared fixtures: a real SeaweedFS S3 server for the whole session, plus per-test buckets."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from objsync.bench.seaweed import SeaweedFS

REGION = "us-east-1"


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """A running SeaweedFS with an S3 gateway on loopback."""
    server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    try:
        yield server
    finally:
        # weed's filer always sits out a 15 s gRPC grace period on SIGTERM; the data is throwaway.
        server.stop(timeout=1.0)


@pytest.fixture(scope="session")
def s3_client(seaweed: SeaweedFS) -> Any:
    """A boto3 S3 client for the session server."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=seaweed.endpoint_url,
        aws_access_key_id=seaweed.access_key,
        aws_secret_access_key=seaweed.secret_key,
        region_name=REGION,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


@pytest.fixture
def bucket(s3_client: Any) -> Iterator[str]:
    """A fresh, empty bucket, removed with its contents afterwards."""
    name = f"test-{uuid.uuid4().hex[:20]}"
    s3_client.create_bucket(Bucket=name)
    yield name
    try:
        for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=name):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                s3_client.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
    except Exception:  # noqa: BLE001 - cleanup is best effort
        pass
    with contextlib.suppress(Exception):
        s3_client.delete_bucket(Bucket=name)


@pytest.fixture
def aws_env(seaweed: SeaweedFS, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point this process's AWS_* environment at the server; returns the variables set."""
    env = seaweed.env()
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    # A session token left in the environment would be sent along with our keys and rejected.
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    return env

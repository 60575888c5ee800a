"""The bucket side of a benchmark: upload a tree, apply a mutation, and check the bucket holds the model."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from objsync.bench.presets import MIB, Expect, Mutation, SeedFile, body

PART_SIZE = 8 * MIB
UPLOAD_THREADS = 32


@dataclass(frozen=True)
class Target:
    """Where the benchmark runs: endpoint (None for AWS), bucket, prefix and the tools' AWS environment."""

    endpoint_url: str | None
    bucket: str
    prefix: str
    env: Mapping[str, str] = field(default_factory=dict)
    metrics_url: str | None = None
    server_pid: int | None = None
    direct_url: str | None = None  # the server itself, when the tools reach it through the latency proxy
    proxy_pid: int | None = None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def key(self, rel: str) -> str:
        return self.prefix + rel


def make_client(target: Target):
    """A boto3 client for the harness itself, with the same credentials the tools get (never delayed)."""
    import boto3
    from botocore.config import Config

    env = target.env
    return boto3.client(
        "s3", endpoint_url=target.direct_url or target.endpoint_url,
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"), aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
        aws_session_token=env.get("AWS_SESSION_TOKEN"),
        region_name=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        config=Config(signature_version="s3v4", max_pool_connections=UPLOAD_THREADS + 4,
                      retries={"mode": "standard", "max_attempts": 5},
                      s3={"addressing_style": "path" if target.endpoint_url else "auto"}))


def upload(client, target: Target, files: Iterable[SeedFile], seed: int) -> int:
    """Upload files in parallel (multipart above PART_SIZE, as real publishers do); returns bytes sent."""
    from boto3.s3.transfer import TransferConfig

    transfer = TransferConfig(multipart_threshold=PART_SIZE, multipart_chunksize=PART_SIZE, use_threads=False)

    def put(f: SeedFile) -> int:
        data = body(f, seed)
        if f.size > PART_SIZE:
            client.upload_fileobj(io.BytesIO(data), target.bucket, target.key(f.rel), Config=transfer)
        else:
            client.put_object(Bucket=target.bucket, Key=target.key(f.rel), Body=data)
        return f.size

    with ThreadPoolExecutor(UPLOAD_THREADS, thread_name_prefix="seed") as pool:
        return sum(pool.map(put, files))


def delete(client, target: Target, rels: Iterable[str]) -> None:
    """Delete objects by relative path, 1,000 per request."""
    keys = [target.key(rel) for rel in rels]
    for start in range(0, len(keys), 1000):
        chunk = [{"Key": k} for k in keys[start:start + 1000]]
        response = client.delete_objects(Bucket=target.bucket, Delete={"Objects": chunk, "Quiet": True})
        if response.get("Errors"):
            first = response["Errors"][0]
            raise RuntimeError(f"cannot delete {first.get('Key')}: {first.get('Code')} {first.get('Message')}")


def apply_mutation(client, target: Target, m: Mutation, seed: int) -> None:
    upload(client, target, m.uploads, seed)
    delete(client, target, m.deleted)


def listing(client, target: Target) -> dict[str, tuple[int, str]]:
    """(size, ETag) of every object under the prefix, by relative path."""
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=target.bucket, Prefix=target.prefix):
        for item in page.get("Contents", ()):
            out[item["Key"][len(target.prefix):]] = (int(item["Size"]), item["ETag"].strip('"'))
    return out


def bucket_problems(listed: Mapping[str, tuple[int, str]], model: Mapping[str, Expect]) -> list[str]:
    """Differences between a listing and the model: missing, extra, wrong size, wrong single-part ETag."""
    problems = [f"missing in bucket: {rel}" for rel in sorted(model.keys() - listed.keys())]
    problems += [f"unexpected in bucket: {rel}" for rel in sorted(listed.keys() - model.keys())]
    for rel in sorted(model.keys() & listed.keys()):
        size, etag = listed[rel]
        want = model[rel]
        if size != want.size:
            problems.append(f"{rel}: bucket has {size} bytes, expected {want.size}")
        elif "-" not in etag and etag != want.md5:  # a multipart ETag ("…-N") is not the MD5 of the bytes
            problems.append(f"{rel}: bucket ETag {etag} is not the MD5 {want.md5}")
    return problems


def check_bucket(client, target: Target, model: Mapping[str, Expect]) -> None:
    """Raise when the bucket does not hold exactly the model, so no tool is timed against a wrong tree."""
    problems = bucket_problems(listing(client, target), model)
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise RuntimeError(f"the bucket does not hold the seeded tree: {'; '.join(problems[:5])}{more}")

"""Packs against a real SeaweedFS: a cold pull reads the pack, a damaged pack falls back to one GET per file."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest
from support import pull, tree
from test_manifest_mode import CountingProxy, proxy  # noqa: F401 - a fixture
from test_push import cli, env_for, staging, write  # noqa: F401 - fixtures
from test_signed import signer  # noqa: F401 - a fixture

from objsync import pack as packs
from objsync.bench.crash import time_cold_pass
from objsync.manifest import Manifest
from objsync.pull import packs as packed
from objsync.pull.versionstore import VersionStore
from objsync.s3.bucket import Bucket
from objsync.s3.config import Location, RemoteConfig

MANIFEST_KEY = "dags/.objsync/manifests/r.json"


def files(n: int, seed: int = 1) -> dict[str, bytes]:
    rng = random.Random(seed)
    return {f"d{i % 7}/f{i}.py": (f"X_{i} = {rng.random()!r}\n" * rng.randint(1, 400)).encode() for i in range(n)}


def push(cli, tmp_path, bucket, content, *extra, env_name="dev"):
    repo = tmp_path / "r"
    for old in sorted((repo / "workflow").rglob("*"), reverse=True) if (repo / "workflow").exists() else ():
        old.unlink() if old.is_file() else old.rmdir()
    write(repo / "workflow", content)
    run = cli("push", env_name, "--repo", "r", "--json", "--no-compile-check", *extra, cwd=repo, env=env_for(bucket))
    assert run.rc == 0, run.err
    return run.summary["manifest_id"]


def current(s3_client, bucket) -> Manifest:
    return Manifest.from_json(s3_client.get_object(Bucket=bucket, Key=MANIFEST_KEY)["Body"].read())


def file_gets(seen) -> list[str]:
    return [path for method, path in seen if method == "GET" and "/dags/r/" in path]


@pytest.fixture
def small_segments(monkeypatch):
    """Segments of 8 KiB, so a small repo's pack has several, as a large one would."""
    monkeypatch.setattr(packs, "SEGMENT_BYTES", 8 << 10)


def test_a_cold_pull_reads_the_pack_and_a_small_change_reads_one_file(
        cli, s3_client, bucket, tmp_path, aws_env, proxy, small_segments):
    v1 = files(300) | {"big.bin": os.urandom(packs.MAX_FILE + 1)}
    push(cli, tmp_path, bucket, v1, "--pack")
    m = current(s3_client, bucket)
    assert m.schema == 4 and m.pack is not None and m.pack.files == 300 and len(m.pack.segments) > 3
    pack_key = f"dags/.objsync/packs/r/{m.id}.pack"
    assert s3_client.head_object(Bucket=bucket, Key=pack_key)["ContentLength"] == m.pack.size

    dest = tmp_path / "d"
    run = pull(f"s3://{bucket}/dags", dest, "--endpoint-url", proxy.url, env=aws_env)
    assert run.rc == 0, run.err
    assert tree(dest) == {f"r/{k}": v for k, v in v1.items()}
    assert file_gets(proxy.seen) == [f"/{bucket}/dags/r/big.bin"]  # the only file too large for the pack
    pack_reads = [p for method, p in proxy.seen if method == "GET" and p.startswith(f"/{bucket}/{pack_key}")]
    lists = [p for _, p in proxy.seen if "list-type=2" in p]
    # Three requests for the repo: one LIST of the top level, its manifest read by name, and one GET of
    # the whole pack (under SPAN_BYTES), which streams in. The one more is the file too large for the pack.
    assert len(lists) == 1 and "delimiter=%2F" in lists[0] and "prefix=dags%2F&" in lists[0] + "&"
    assert [p for m, p in proxy.seen if m == "GET" and p.startswith(f"/{bucket}/{MANIFEST_KEY}")] == [
        f"/{bucket}/{MANIFEST_KEY}"]
    assert len(pack_reads) == 1 and len(proxy.seen) == 3 + 1, proxy.seen

    v2 = v1 | {"d0/f0.py": b"X_0 = 'changed'\n"}
    push(cli, tmp_path, bucket, v2, "--pack")
    proxy.seen.clear()
    run = pull(f"s3://{bucket}/dags", dest, "--endpoint-url", proxy.url, env=aws_env)
    assert run.rc == 0, run.err
    assert file_gets(proxy.seen) == [f"/{bucket}/dags/r/d0/f0.py"]
    assert not [p for _, p in proxy.seen if "/packs/" in p]
    assert tree(dest) == {f"r/{k}": v for k, v in v2.items()}


def test_a_damaged_or_foreign_pack_is_reported_and_each_file_read_alone(
        cli, s3_client, bucket, tmp_path, aws_env, small_segments, signer):
    content = files(120, seed=2)
    push(cli, tmp_path, bucket, content, "--pack", "--sign-key", str(signer["a"][0]))
    m = current(s3_client, bucket)
    pack_key = f"dags/.objsync/packs/r/{m.id}.pack"
    good = s3_client.get_object(Bucket=bucket, Key=pack_key)["Body"].read()
    expected = {f"r/{k}": v for k, v in content.items()}

    # Overwritten in place: the pack's ETag no longer matches, so no byte of it is read.
    s3_client.put_object(Bucket=bucket, Key=pack_key, Body=good[::-1])
    run = pull(f"s3://{bucket}/dags", tmp_path / "a", "--verify-key", str(signer["a"][1]), env=aws_env)
    assert run.rc == 0, run.err
    assert tree(tmp_path / "a") == expected and "PreconditionFailed" in run.err
    assert run.err.count(f"pack {pack_key}: 120 of its files were read one by one") == 1  # one line, not 120

    # A pack of other files, with the manifest's pack record rewritten to match it: the signature does not
    # cover the pack, the per-file SHA-256s do.
    other = files(120, seed=3)
    data, segments = packs.build(list(other.values()), [len(v) for v in other.values()])
    s3_client.put_object(Bucket=bucket, Key=pack_key, Body=data)
    etag = s3_client.head_object(Bucket=bucket, Key=pack_key)["ETag"].strip('"')
    doc = json.loads(m.to_json())
    doc["pack"] = {"etag": etag, "size": len(data), "version_id": None, "max_file": packs.MAX_FILE,
                   "format": "zstd", "segments": [[s.offset, s.length, s.files] for s in segments]}
    s3_client.put_object(Bucket=bucket, Key=MANIFEST_KEY, Body=json.dumps(doc).encode())
    run = pull(f"s3://{bucket}/dags", tmp_path / "b", "--verify-key", str(signer["a"][1]), env=aws_env)
    assert run.rc == 0, run.err
    assert tree(tmp_path / "b") == expected and f"pack {pack_key}" in run.err


class CutPack(CountingProxy):
    """Records every request, and cuts the first answer that carries bytes of a pack half-way."""

    def __init__(self, upstream) -> None:
        super().__init__(upstream)
        self.rate, self.kinds, self.budget, self.objects_only = 1.0, ("truncate",), 1, True
        self._pack = threading.local()

    def _handle(self, h) -> None:
        self._pack.now = "/packs/" in h.path
        super()._handle(h)

    def _choose(self, carries_object: bool):
        return super()._choose(carries_object) if self._pack.now else None


def test_a_large_pack_is_read_in_ranged_reads_at_once_and_a_cut_one_goes_on(
        cli, s3_client, bucket, tmp_path, aws_env, seaweed, small_segments, monkeypatch):
    content = files(300, seed=6)
    push(cli, tmp_path, bucket, content, "--pack")
    m = current(s3_client, bucket)
    monkeypatch.setattr(packed, "SPAN_BYTES", m.pack.size // 3)
    spans = packs.ranges(m.pack.segments, range(len(m.pack.segments)), packed.SPAN_BYTES)
    assert len(spans) >= 3

    host, port = seaweed.endpoint_url.rsplit("//", 1)[1].split(":")
    cutting = CutPack((host, int(port)))
    try:
        remote = RemoteConfig(endpoint_url=cutting.url)
        store = VersionStore(Bucket(remote, bucket), remote, Location(bucket, "dags"), "r", tmp_path / "b",
                             tmp_path / "b" / "versions")
        assert store.refresh() == m.id
    finally:
        cutting.close()
    built = store.path(m.id)
    assert {p.relative_to(built).as_posix(): p.read_bytes() for p in built.rglob("*") if p.is_file()} == content
    assert cutting.injected["truncate"] == 1
    # Every span once, and the cut one once more from where it broke off; no file needed a GET of its own.
    assert len([p for _, p in cutting.seen if "/packs/" in p]) == len(spans) + 1
    assert file_gets(cutting.seen) == []


def test_promote_copies_the_pack_and_the_version_store_builds_from_it(
        cli, s3_client, bucket, staging, tmp_path, aws_env, proxy, seaweed):
    content = files(80, seed=4)
    repo = tmp_path / "r"
    write(repo / "workflow", content)
    env = env_for(bucket) | env_for(staging, name="STAGING")
    assert cli("push", "dev", "--repo", "r", "--pack", "--no-compile-check", cwd=repo, env=env).rc == 0
    run = cli("promote", "dev", "staging", "--repo", "r", cwd=repo, env=env)
    assert run.rc == 0, run.err
    m = Manifest.from_json(s3_client.get_object(Bucket=staging, Key=MANIFEST_KEY)["Body"].read())
    assert m.pack is not None and m.promoted_from is not None
    assert s3_client.head_object(Bucket=staging, Key=f"dags/.objsync/packs/r/{m.id}.pack")["ContentLength"] == m.pack.size

    remote = RemoteConfig(endpoint_url=proxy.url)
    store = VersionStore(Bucket(remote, staging), remote, Location(staging, "dags"), "r", tmp_path / "b",
                         tmp_path / "b" / "versions")
    assert store.refresh() == m.id
    assert file_gets(proxy.seen) == []
    built = store.path(m.id)
    assert {p.relative_to(built).as_posix(): p.read_bytes() for p in built.rglob("*") if p.is_file()} == content


def test_kill_9_during_a_pack_pull_leaves_no_partial_file(cli, s3_client, bucket, tmp_path, aws_env):
    # Incompressible files, so the pack takes a while to stream in and a kill lands mid-read.
    rng = random.Random(7)
    content = files(300, seed=5) | {f"blob/{i}.bin": rng.randbytes(700_000) for i in range(36)}
    push(cli, tmp_path, bucket, content, "--pack")
    expected = {f"r/{k}": v for k, v in content.items()}
    dest = tmp_path / "d"
    argv = ["pull", "--once", f"s3://{bucket}/dags", str(dest)]
    env = dict(os.environ) | aws_env
    first, full = time_cold_pass(argv, env, dest)
    landed = []
    for trial in range(8):
        shutil.rmtree(dest, ignore_errors=True)
        proc = subprocess.Popen([sys.executable, "-m", "objsync", *argv], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.8 * first, full))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        got = tree(dest) if dest.exists() else {}
        assert all(expected[rel] == data for rel, data in got.items()), trial  # whole files or none
        landed.append(len(got))
        run = pull(f"s3://{bucket}/dags", dest, env=aws_env)
        assert run.rc == 0, run.err
        assert tree(dest) == expected
        assert list((dest / ".objsync" / "tmp").iterdir()) == []
    assert any(n < len(expected) for n in landed), (landed, first, full)  # kills landed mid-pass

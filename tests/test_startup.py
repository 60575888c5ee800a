"""What a `--once` pull loads: with static keys in the environment, neither boto3 nor the daemon's modules."""

from __future__ import annotations

import os
import subprocess
import sys

from faultproxy import FaultProxy
from support import put, tree

# Loaded only by the daemon, by push, by the benchmarks, by a fallback to boto3, to count CPUs, to start
# worker processes, for --include/--exclude patterns, to write a download, to sync a filesystem, or once a
# manifest or a pack is met.
NOT_FOR_ONCE = ("boto3", "botocore", "s3transfer", "urllib3", "prometheus_client", "sentry_sdk", "tqdm", "psutil",
                "multiprocessing", "wcmatch", "ctypes", "objsync.pull.fetch", "objsync.pack", "objsync.manifest",
                "objsync.pull.versions",
                "urllib.request", "objsync.daemon.serve", "objsync.daemon.loop", "objsync.daemon.status",
                "objsync.daemon.metrics", "objsync.daemon.sentry", "objsync.bench", "objsync.push.commands")


def loaded(*args: str, env: dict[str, str]) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run `python -X importtime -m objsync ARGS`; the run and the names of every module it imported."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "objsync", *args], capture_output=True,
                          text=True, env=env, timeout=120)
    names = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines()
             if line.startswith("import time:") and "self [us]" not in line}
    return proc, names


def static_env(aws_env: dict[str, str], tmp_path) -> dict[str, str]:
    """The server's keys in the environment, no AWS config or credentials file (a developer's ~/.aws), and no
    proxy for the server on loopback (a proxy keeps botocore's transport)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and not k.lower().endswith("_proxy")}
    return env | aws_env | {"AWS_CONFIG_FILE": str(tmp_path / "no-config"),
                            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials")}


def test_an_unchanged_once_pull_loads_only_what_it_uses(s3_client, bucket, aws_env, tmp_path):
    objects = {f"p/d{i}/f{i}.py": f"dag {i}\n".encode() for i in range(12)}
    put(s3_client, bucket, objects)
    env, dest = static_env(aws_env, tmp_path), tmp_path / "dags"
    first, names = loaded("pull", "--once", f"s3://{bucket}/p", str(dest), env=env)
    assert first.returncode == 0, first.stderr
    assert tree(dest) == {k[2:]: v for k, v in objects.items()}
    assert "pycurl" in names and not names & {"boto3", "botocore"}  # the downloads took the fast path
    again, names = loaded("pull", "--once", f"s3://{bucket}/p", str(dest), env=env)
    assert again.returncode == 0, again.stderr
    assert "objsync.pull.session" in names  # the run was seen
    assert sorted(n for n in names if n.split(".")[0] in NOT_FOR_ONCE or n.startswith(NOT_FOR_ONCE)) == []


def test_a_restart_on_an_unchanged_prefix_sends_one_request(s3_client, bucket, aws_env, seaweed, tmp_path):
    """As objinsync's: the listing, which is the last clean pass's and held no manifest, is the whole run."""
    put(s3_client, bucket, {f"p/d{i}/f{i}.py": f"dag {i}\n".encode() for i in range(12)})
    host, port = seaweed.endpoint_url.rsplit("//", 1)[1].split(":")
    counting = FaultProxy((host, int(port)), rate=0.0)
    try:
        env = static_env(aws_env, tmp_path) | {"AWS_ENDPOINT_URL": counting.url}
        argv = [sys.executable, "-m", "objsync", "pull", "--once", f"s3://{bucket}/p", str(tmp_path / "dags")]
        assert subprocess.run(argv, env=env, capture_output=True, timeout=120).returncode == 0
        before = counting.requests
        again = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
        assert counting.requests - before == 1
        assert '"skipped": 12' in again.stderr or '"skipped": 12' in again.stdout
    finally:
        counting.close()


def test_keys_from_a_credentials_file_still_work(s3_client, bucket, aws_env, seaweed, tmp_path):
    """Without keys in the environment, botocore's whole chain finds them, here in a profile's file."""
    objects = {"p/a.py": b"a\n", "p/sub/b.py": b"b\n"}
    put(s3_client, bucket, objects)
    credentials = tmp_path / "credentials"
    credentials.write_text(f"[team]\naws_access_key_id = {seaweed.access_key}\n"
                           f"aws_secret_access_key = {seaweed.secret_key}\n")
    env = {k: v for k, v in static_env(aws_env, tmp_path).items()
           if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    env |= {"AWS_SHARED_CREDENTIALS_FILE": str(credentials), "AWS_PROFILE": "team"}
    run, names = loaded("pull", "--once", f"s3://{bucket}/p", str(tmp_path / "d"), env=env)
    assert run.returncode == 0, run.stderr
    assert tree(tmp_path / "d") == {"a.py": b"a\n", "sub/b.py": b"b\n"}
    assert "botocore.credentials" in names and "pycurl" in names  # botocore's keys, on the fast path


def test_static_keys_next_to_a_config_file_go_through_botocore(s3_client, bucket, aws_env, tmp_path):
    """A config file can change what botocore resolves, so its presence keeps botocore in charge."""
    put(s3_client, bucket, {"p/a.py": b"a\n"})
    config = tmp_path / "config"
    config.write_text("[default]\nregion = us-east-1\n")
    env = static_env(aws_env, tmp_path) | {"AWS_CONFIG_FILE": str(config)}
    run, names = loaded("pull", "--once", f"s3://{bucket}/p", str(tmp_path / "d"), env=env)
    assert run.returncode == 0, run.stderr
    assert tree(tmp_path / "d") == {"a.py": b"a\n"} and "botocore" in names

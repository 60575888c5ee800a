"""Credentials never appear in what objsync emits: logs, --json, /metrics, /health, or files it writes."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from faultproxy import FaultProxy
from support import objsync, put
from test_daemon import Daemon, get, wait_for

from objsync.bench.seaweed import SeaweedFS

SECRET = f"objsyncSECRET{uuid.uuid4().hex}"
WRONG_SECRET = f"objsyncWRONG{uuid.uuid4().hex}"
TOKEN = f"objsyncTOKEN{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A SeaweedFS of its own, whose secret key is distinctive enough to grep for."""
    s = SeaweedFS(tmp_path_factory.mktemp("secrets"), access_key=f"AKID{uuid.uuid4().hex[:16]}", secret_key=SECRET)
    s.start()
    try:
        yield s
    finally:
        s.stop(timeout=1.0)


def emitted_files(dest: Path) -> list[tuple[str, bytes]]:
    """Every file objsync wrote below `dest`, its own state folder included."""
    return [(str(p), p.read_bytes()) for p in dest.rglob("*") if p.is_file() and not p.is_symlink()]


def test_no_credential_in_any_output_of_good_and_failing_runs(server, tmp_path, monkeypatch):
    import boto3

    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    env = server.env()
    client = boto3.client("s3", endpoint_url=server.endpoint_url, aws_access_key_id=server.access_key,
                          aws_secret_access_key=SECRET, region_name="us-east-1")
    client.create_bucket(Bucket="sec")
    put(client, "sec", {f"s/f{i}.py": b"x" * (1000 + i) for i in range(40)})
    src = "s3://sec/s"
    outputs: list[tuple[str, str | bytes]] = []

    def once(label: str, *args: str, expect: int, extra_env: dict[str, str] | None = None) -> str:
        dest = tmp_path / label
        run = objsync("pull", "--once", "--json", *args, src, str(dest), env=env | (extra_env or {}))
        assert run.rc == expect, (label, run.err)
        outputs.extend([(f"{label} stdout", run.out), (f"{label} stderr", run.err)])
        outputs.extend(emitted_files(dest))
        return run.err

    once("ok", expect=0)
    once("debug", "--log-level", "debug", expect=0, extra_env={"DEBUG": "1"})
    assert "SignatureDoesNotMatch" in once("wrong-secret", expect=1, extra_env={"AWS_SECRET_ACCESS_KEY": WRONG_SECRET})
    assert "403" in once("session-token", expect=1, extra_env={"AWS_SESSION_TOKEN": TOKEN})
    assert "cannot connect" in once("bad-endpoint", "--endpoint-url", "http://127.0.0.1:1", "--connect-timeout", "1s",
                                    expect=1)
    host, port = server.endpoint_url.rsplit("//", 1)[1].split(":")
    proxy = FaultProxy((host, int(port)), rate=0.5, kinds=("500", "503", "etag", "reset"), seed=3)
    try:
        once("faults", "--endpoint-url", proxy.url, "--read-timeout", "1s", expect=1)
    finally:
        proxy.close()

    for label, extra_env in (("daemon-ok", {}), ("daemon-wrong-secret", {"AWS_SECRET_ACCESS_KEY": WRONG_SECRET}),
                             ("daemon-token", {"AWS_SESSION_TOKEN": TOKEN})):
        dest = tmp_path / label
        with Daemon(src, dest, env | extra_env) as daemon:
            wait_for(lambda: daemon.passes() >= 2, timeout=30, what=f"{label}: two passes")
            for path in ("/metrics", "/health"):
                code, text = get(f"http://127.0.0.1:{daemon.port}{path}")
                assert code in (200, 500) and text
                outputs.append((f"{label} {path}", text))
            assert daemon.stop() == 0
        outputs.append((f"{label} stderr", daemon.stderr_path.read_text()))
        outputs.extend(emitted_files(dest))

    said = dict((label, text) for label, text in outputs if isinstance(text, str))
    health = said["daemon-wrong-secret /health"]  # failing, not starting: it says why, and still no secret
    assert health.startswith("Pull not finished: ") and "consecutive failed passes" in health
    assert "SignatureDoesNotMatch" in health
    assert "SignatureDoesNotMatch" in said["daemon-wrong-secret stderr"]
    assert 'objsync_errors_total{kind="listing"}' in said["daemon-token /metrics"]
    assert len(outputs) > 30
    for label, text in outputs:
        data = text.encode() if isinstance(text, str) else text
        for secret in (SECRET, WRONG_SECRET, TOKEN):
            assert secret.encode() not in data, f"{secret[:13]}… found in {label}"

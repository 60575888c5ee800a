"""Daemon mode against a real SeaweedFS: loop, health, metrics, outages, signals, hooks, lock."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from proxy import TcpProxy
from support import objsync, put, tree

INTERVAL = "300ms"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[int, str]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def wait_for(predicate, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Daemon:
    def __init__(self, src: str, dest: Path, env: dict[str, str], *extra: str, interval: str = INTERVAL):
        self.port = free_port()
        self.dest = dest
        full_env = dict(os.environ) | env
        full_env.pop("AWS_PROFILE", None)
        self.stderr_path = dest.parent / f"{dest.name}.stderr"
        self._stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "objsync", "pull", "-i", interval, "-s", f"127.0.0.1:{self.port}", *extra,
             src, str(dest)], env=full_env, stdout=subprocess.DEVNULL, stderr=self._stderr)

    def health(self) -> tuple[int, str]:
        return get(f"http://127.0.0.1:{self.port}/health")

    def metrics(self) -> dict[str, float]:
        code, text = get(f"http://127.0.0.1:{self.port}/metrics")
        out: dict[str, float] = {}
        if code != 200:
            return out  # not serving yet
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                out[sample.name + (f"{{{labels}}}" if labels else "")] = sample.value
        return out

    def passes(self) -> float:
        m = self.metrics()
        return m.get("objsync_passes_total{result=ok}", 0) + m.get("objsync_passes_total{result=failed}", 0)

    def log(self) -> list[dict]:
        return [json.loads(line) for line in self.stderr_path.read_text().splitlines() if line.startswith("{")]

    def stop(self, sig=signal.SIGTERM, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout)
        self._stderr.close()
        return rc

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._stderr.close()


def test_daemon_follows_uploads_overwrites_and_deletes(s3_client, bucket, tmp_path, aws_env):
    put(s3_client, bucket, {"d/a.py": b"a1", "d/b.py": b"b1"})
    d = tmp_path / "d"
    with Daemon(f"s3://{bucket}/d", d, aws_env) as daemon:
        wait_for(lambda: daemon.health()[0] != 0, what="status server")
        wait_for(lambda: daemon.health() == (200, "GOOD"), what="healthy")
        assert tree(d) == {"a.py": b"a1", "b.py": b"b1"}  # healthy means the first pass is complete
        put(s3_client, bucket, {"d/a.py": b"a2", "d/c.py": b"c1"})
        s3_client.delete_object(Bucket=bucket, Key="d/b.py")
        wait_for(lambda: tree(d) == {"a.py": b"a2", "c.py": b"c1"}, timeout=5, what="changes to arrive")
        m = daemon.metrics()
        assert m["objsync_files_fetched_total"] == 4 and m["objsync_files_deleted_total"] == 1
        assert m["objinsync_pull_files_listed"] == 2
        assert "objinsync_loop_sync_time" in m and "objsync_pass_duration_seconds_count" in m
        assert m["objsync_last_success_timestamp_seconds"] > time.time() - 60
        assert daemon.stop() == 0
    assert list((d / ".objsync/tmp").iterdir()) == []


def test_health_is_500_until_the_first_pass_succeeds(s3_client, bucket, tmp_path, aws_env):
    proxy = TcpProxy("127.0.0.1", int(aws_env["AWS_ENDPOINT_URL"].rsplit(":", 1)[1]))
    proxy.set_down(True)
    put(s3_client, bucket, {"d/a.py": b"a"})
    try:
        with Daemon(f"s3://{bucket}/d", tmp_path / "d", aws_env, "--endpoint-url", proxy.url) as daemon:
            wait_for(lambda: daemon.health()[0] == 500, what="status server")
            wait_for(lambda: daemon.passes() >= 1, what="a failed pass")
            code, body = daemon.health()  # failing, not starting: it says how often, and why
            assert code == 500 and body.startswith("Pull not finished: ") and "consecutive failed pass" in body
            assert f"last error: s3://{bucket}/d: listing failed" in body
            proxy.set_down(False)
            wait_for(lambda: daemon.health() == (200, "GOOD"), timeout=30, what="recovery")
            assert daemon.stop() == 0
        assert any("backing off, next pass in" in r["msg"] for r in daemon.log())
    finally:
        proxy.close()
    with Daemon(f"s3://{bucket}/d", tmp_path / "d", aws_env) as restarted:
        wait_for(lambda: restarted.health() == (200, "GOOD"), what="healthy")
        assert restarted.stop() == 0
    assert [r["msg"] for r in restarted.log() if "up to date" in r["msg"]] == [
        f"{tmp_path / 'd'} is up to date with s3://{bucket}/d (listed 1, nothing to fetch or delete)"]


def test_outage_keeps_the_daemon_alive_reports_failures_and_recovers(s3_client, bucket, tmp_path, aws_env):
    proxy = TcpProxy("127.0.0.1", int(aws_env["AWS_ENDPOINT_URL"].rsplit(":", 1)[1]))
    put(s3_client, bucket, {"d/a.py": b"a1"})
    d = tmp_path / "d"
    try:
        with Daemon(f"s3://{bucket}/d", d, aws_env, "--endpoint-url", proxy.url, "--max-failures", "2") as daemon:
            wait_for(lambda: daemon.health() == (200, "GOOD"), what="healthy")
            proxy.set_down(True)
            wait_for(lambda: daemon.metrics()["objsync_consecutive_failures"] >= 2, timeout=30, what="failures")
            code, text = daemon.health()
            assert code == 500 and "consecutive failed passes" in text
            assert daemon.metrics()["objsync_errors_total{kind=listing}"] >= 2
            assert tree(d) == {"a.py": b"a1"}  # an outage deletes nothing
            put(s3_client, bucket, {"d/a.py": b"a2"})
            proxy.set_down(False)
            wait_for(lambda: daemon.health() == (200, "GOOD"), timeout=30, what="recovery")
            wait_for(lambda: tree(d) == {"a.py": b"a2"}, timeout=10, what="catch-up")
            assert daemon.proc.poll() is None
            assert any(rec.get("kind") == "listing" for rec in daemon.log())
            assert daemon.stop() == 0
    finally:
        proxy.close()


def test_sigterm_mid_pass_leaves_no_temp_file_and_a_consistent_cache(s3_client, bucket, tmp_path, aws_env):
    from concurrent.futures import ThreadPoolExecutor
    objects = {f"big/r{i % 5}/f{i}.py": os.urandom(30_000) for i in range(1500)}
    with ThreadPoolExecutor(16) as ex:
        list(ex.map(lambda kv: s3_client.put_object(Bucket=bucket, Key=kv[0], Body=kv[1]), objects.items()))
    d = tmp_path / "d"
    with Daemon(f"s3://{bucket}/big", d, aws_env, "--workers", "2", "--threads", "2") as daemon:
        wait_for(lambda: len(list(d.glob("r*/*.py"))) >= 50, timeout=60, what="the pass to be under way")
        started = time.monotonic()
        assert daemon.stop() == 0
        assert time.monotonic() - started < 10
    assert list((d / ".objsync/tmp").iterdir()) == []
    from objsync.pull.state import State
    with State.open(d / ".objsync/cache", f"{aws_env['AWS_ENDPOINT_URL']}|{bucket}|big/") as state:
        assert 0 < len(state.entries) < len(objects)
        for rel, entry in state.entries.items():
            st = (d / rel).stat()
            assert (st.st_size, st.st_mtime_ns) == (entry.size, entry.mtime_ns)
            assert (d / rel).read_bytes() == objects["big/" + rel]
    run = objsync("pull", "--once", "--json", f"s3://{bucket}/big", str(d), env=aws_env)
    assert run.rc == 0 and tree(d) == {k[4:]: v for k, v in objects.items()}


def test_sighup_starts_a_pass_now(s3_client, bucket, tmp_path, aws_env):
    put(s3_client, bucket, {"d/a.py": b"a"})
    d = tmp_path / "d"
    with Daemon(f"s3://{bucket}/d", d, aws_env, interval="1h") as daemon:
        wait_for(lambda: daemon.health() == (200, "GOOD"), what="healthy")
        put(s3_client, bucket, {"d/b.py": b"b"})
        time.sleep(0.5)
        assert not (d / "b.py").exists()
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: (d / "b.py").exists(), timeout=10, what="the SIGHUP pass")
        assert daemon.stop() == 0


def test_hooks_run_after_a_change_and_a_failing_hook_is_harmless(s3_client, bucket, tmp_path, aws_env):
    put(s3_client, bucket, {"d/a.py": b"a"})
    d = tmp_path / "d"
    marker, counts = tmp_path / "touched", tmp_path / "counts"
    hook = f'echo "$OBJSYNC_FETCHED $OBJSYNC_DELETED" >> {counts}; exit 3'
    with Daemon(f"s3://{bucket}/d", d, aws_env, "--touch-file", str(marker), "--exec-on-change", hook) as daemon:
        wait_for(lambda: counts.exists(), what="the hook")
        assert marker.exists()
        s3_client.delete_object(Bucket=bucket, Key="d/a.py")
        put(s3_client, bucket, {"d/b.py": b"b"})
        wait_for(lambda: len(counts.read_text().splitlines()) == 2, what="the second hook")
        time.sleep(1)  # no-op passes run no hook
        assert counts.read_text().splitlines() == ["1 0", "1 1"]
        assert daemon.health() == (200, "GOOD")
        assert any("exec-on-change exited with 3" in rec["msg"] for rec in daemon.log())
        assert daemon.stop() == 0


def test_second_instance_names_the_pid_holding_the_lock(s3_client, bucket, tmp_path, aws_env):
    put(s3_client, bucket, {"d/a.py": b"a"})
    d = tmp_path / "d"
    with Daemon(f"s3://{bucket}/d", d, aws_env) as daemon:
        wait_for(lambda: daemon.health() == (200, "GOOD"), what="healthy")
        run = objsync("pull", "--once", f"s3://{bucket}/d", str(d), env=aws_env)
        assert run.rc == 1 and f"pid {daemon.proc.pid}" in run.err
        assert daemon.health() == (200, "GOOD")
        assert daemon.stop() == 0


def test_flags_from_objsync_environment_variables(s3_client, bucket, tmp_path, aws_env):
    put(s3_client, bucket, {"d/a.py": b"a", "d/skip/x.py": b"x"})
    env = aws_env | {"OBJSYNC_ONCE": "true", "OBJSYNC_EXCLUDE": "skip/**", "OBJSYNC_DEFAULT_FILE_MODE": "0600"}
    run = objsync("pull", f"s3://{bucket}/d", str(tmp_path / "d"), env=env)
    assert run.rc == 0, run.err
    assert tree(tmp_path / "d") == {"a.py": b"a"}
    assert (tmp_path / "d/a.py").stat().st_mode & 0o777 == 0o600
    bad = objsync("pull", f"s3://{bucket}/d", str(tmp_path / "e"), env=env | {"OBJSYNC_INTERVAL": "soon"})
    assert bad.rc == 2 and "OBJSYNC_INTERVAL" in bad.err


def test_status_off_and_bad_status_address(s3_client, bucket, tmp_path, aws_env):
    bad = objsync("pull", "-s", "nonsense", f"s3://{bucket}/d", str(tmp_path / "d"), env=aws_env)
    assert bad.rc == 2 and "nonsense" in bad.err


def test_sentry_dsn_without_the_extra_logs_one_warning_and_syncs(s3_client, bucket, tmp_path, aws_env):
    put(s3_client, bucket, {"d/a.py": b"a"})
    d = tmp_path / "d"
    env = aws_env | {"SENTRY_DSN": "https://public@sentry.invalid/1"}
    with Daemon(f"s3://{bucket}/d", d, env) as daemon:
        wait_for(lambda: daemon.health() == (200, "GOOD"), what="healthy")
        assert daemon.stop() == 0
    warnings = [r for r in daemon.log() if "sentry-sdk is not installed" in r["msg"]]
    assert len(warnings) == 1 and warnings[0]["level"] == "warning"
    assert tree(d) == {"a.py": b"a"}

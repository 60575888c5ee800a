"""The single-writer lock: a lock left by a process killed with SIGKILL is taken over safely."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from support import objsync, tree
from test_daemon import wait_for


def test_lock_of_a_killed_daemon_is_taken_over_and_the_next_run_converges(s3_client, bucket, tmp_path, aws_env):
    objects = {f"k/r{i % 5}/f{i}.py": os.urandom(20_000 + i) for i in range(600)}
    with ThreadPoolExecutor(16) as ex:
        list(ex.map(lambda kv: s3_client.put_object(Bucket=bucket, Key=kv[0], Body=kv[1]), objects.items()))
    d = tmp_path / "d"
    lock = d / ".objsync/lock"
    env = dict(os.environ) | aws_env
    holder = subprocess.Popen([sys.executable, "-m", "objsync", "pull", "-i", "200ms", "-s", "off", "--workers", "2",
                               "--threads", "2", f"s3://{bucket}/k", str(d)], env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: lock.exists() and lock.read_text() == str(holder.pid), what="the daemon to take the lock")
        wait_for(lambda: len(list(d.glob("r*/*.py"))) >= 20, timeout=60, what="the first pass to be under way")
        busy = objsync("pull", "--once", f"s3://{bucket}/k", str(d), env=aws_env)
        assert busy.rc == 1 and f"pid {holder.pid}" in busy.err

        os.kill(holder.pid, signal.SIGKILL)  # the holder alone, as the OOM killer would do it
        holder.wait()
        assert lock.read_text() == str(holder.pid)  # the file stays; the flock went with the process

        run = objsync("pull", "--once", "--json", f"s3://{bucket}/k", str(d), env=aws_env)
        assert run.rc == 0, run.err
        assert "another objsync" not in run.err
        assert tree(d) == {k[2:]: v for k, v in objects.items()}
        assert list((d / ".objsync/tmp").iterdir()) == []
        assert lock.read_text() not in ("", str(holder.pid))  # the new holder wrote its own PID
    finally:
        try:
            os.killpg(holder.pid, signal.SIGKILL)  # workers the holder left behind, if any
        except ProcessLookupError:
            pass
        holder.wait()

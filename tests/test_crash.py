"""kill -9 at random moments of cold and incremental passes: nothing partial, the cache never lies."""

from __future__ import annotations

import os
import random
from concurrent.futures import ThreadPoolExecutor

import pytest
from support import objsync, tree

from objsync.bench.crash import Bucket, check, mutate, run_trial, time_cold_pass

TRIALS = 20


@pytest.mark.parametrize("workers", ["0", "2"])  # in-process lanes (the default on 2 CPUs), worker processes
def test_kill_9_at_random_moments(s3_client, bucket, tmp_path, aws_env, workers):
    rng = random.Random(20261124)
    b = Bucket(s3_client, bucket, "c/")
    with ThreadPoolExecutor(16) as ex:
        list(ex.map(lambda i: b.put(f"r{i % 6}/d{i % 11}/f{i}.py", os.urandom(rng.randint(200, 60_000))),
                    range(200)))
    dest = tmp_path / "d"
    identity = f"{aws_env['AWS_ENDPOINT_URL']}|{bucket}|c/"
    argv = ["pull", "--once", "--workers", workers, "--threads", "4", f"s3://{bucket}/c", str(dest)]
    env = dict(os.environ) | aws_env
    # Most of a short pass is start-up: kills land from a little before the first file to the end.
    first_file, full_pass = time_cold_pass(argv, env, dest)
    results = []
    for trial in range(TRIALS):
        mode = "cold" if trial % 2 == 0 else "incremental"
        if mode == "cold" and dest.exists():
            import shutil
            shutil.rmtree(dest)
        else:
            mutate(b, rng)
        if mode == "cold" and trial % 4 == 0:  # half the cold kills are timed from the first file on
            result = run_trial(argv, env, dest, b, identity, rng, mode, min_delay=0.0,
                               max_delay=0.5 * (full_pass - first_file), after_first_file=True)
        else:
            result = run_trial(argv, env, dest, b, identity, rng, mode, max_delay=full_pass,
                               min_delay=0.6 * first_file)
        assert result.violations == (), (trial, result)
        results.append(result)
        run = objsync(*argv, env=aws_env)
        assert run.rc == 0, run.err
        assert tree(dest) == b.current
        assert list((dest / ".objsync/tmp").iterdir()) == []
        assert check(dest, b, identity) == []
    # The kills must land mid-pass for the trials to mean anything: some with a part of the files.
    summary = [(r.mode, round(r.killed_after, 2), r.files_present) for r in results]
    assert any(0 < r.files_present < len(b.current) for r in results if r.mode == "cold"), summary

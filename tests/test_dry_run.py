"""--dry-run and --json against a real SeaweedFS: one JSON document of what would be done, and nothing on disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from support import objsync, put
from test_push import cli, env_for, write  # noqa: F401 - cli is a fixture

DAGS = {"dags/a.py": b"a = 1\n", "dags/team/b.py": b"b = 2\n" * 10, "dags/team/c.py": b"c = 3\n"}


def files_below(root: Path) -> dict[str, tuple[int, int]]:
    """Every path below root, objsync's own folder included, with its size and mtime."""
    return {p.relative_to(root).as_posix(): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in root.rglob("*")}


def document(out: str) -> dict:
    """stdout as exactly one JSON document (json.loads refuses anything before or after it)."""
    return json.loads(out)


def test_a_pull_dry_run_prints_one_json_document_of_what_it_would_do(s3_client, bucket, tmp_path, aws_env):
    put(s3_client, bucket, DAGS)
    d = tmp_path / "d"
    d.mkdir()
    (d / "stray.py").write_bytes(b"s")
    run = objsync("pull", "--once", "--dry-run", "--json", f"s3://{bucket}/dags", str(d), env=aws_env)
    assert run.rc == 0, run.err
    doc = document(run.out)
    assert doc["dry_run"] is True
    assert (doc["listed"], doc["fetched"], doc["deleted"]) == (3, 3, 1)
    assert doc["bytes"] == sum(map(len, DAGS.values()))
    assert "fetch   a.py  (new)" in run.err and "delete  stray.py" in run.err
    assert os.listdir(d) == ["stray.py"]  # no .objsync/: no lock, no cache, no tmp


def test_a_dry_run_into_a_missing_folder_creates_nothing(s3_client, bucket, tmp_path, aws_env):
    put(s3_client, bucket, DAGS)
    d = tmp_path / "missing" / "d"
    run = objsync("pull", "--once", "--dry-run", "--atomic", f"s3://{bucket}/dags", str(d), env=aws_env)
    assert run.rc == 0, run.err
    assert "fetch   team/b.py  (new)" in run.out and not (tmp_path / "missing").exists()


def test_a_dry_run_plans_from_the_cache_and_leaves_it_as_it_was(s3_client, bucket, tmp_path, aws_env):
    put(s3_client, bucket, DAGS)
    d = tmp_path / "d"
    assert objsync("pull", "--once", f"s3://{bucket}/dags", str(d), env=aws_env).rc == 0
    before = files_below(d)
    put(s3_client, bucket, {"dags/a.py": b"a = 2\n"})
    run = objsync("pull", "--once", "--dry-run", "--json", f"s3://{bucket}/dags", str(d), env=aws_env)
    assert run.rc == 0, run.err
    doc = document(run.out)
    assert (doc["fetched"], doc["skipped"], doc["deleted"]) == (1, 2, 0)  # the cache says the rest is in place
    assert "fetch   a.py  (changed in bucket" in run.err
    assert files_below(d) == before


def pull_without_reaching_s3(d: Path, aws_env: dict[str, str], **changes: str | None) -> subprocess.CompletedProcess:
    env = dict(os.environ) | aws_env | {"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return subprocess.run([sys.executable, "-m", "objsync", "pull", "--once", "--json", "s3://b/dags", str(d)],
                          env=env, capture_output=True, text=True, timeout=120)


def test_a_pull_that_cannot_list_leaves_no_new_files(tmp_path, aws_env):
    missing, empty = tmp_path / "new" / "d", tmp_path / "empty"
    empty.mkdir()
    no_credentials = {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None, "AWS_PROFILE": None}
    for d, changes in [(missing, {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}), (empty, no_credentials)]:
        proc = pull_without_reaching_s3(d, aws_env, **changes)
        assert proc.returncode == 1, proc.stderr
        assert "listing failed" in document(proc.stdout)["errors"][0]["error"]
    assert not (tmp_path / "new").exists() and os.listdir(empty) == []


def test_a_push_dry_run_reports_the_uploads_it_would_do(cli, s3_client, bucket, tmp_path):  # noqa: F811
    repo = tmp_path / "r"
    write(repo / "workflow", {"a.py": b"a = 1\n", "b.py": b"b = 1\n"})
    env = env_for(bucket)
    assert cli("push", "dev", "--repo", "r", cwd=repo, env=env).rc == 0
    (repo / "workflow" / "b.py").unlink()
    write(repo / "workflow", {"extra.py": b"x = 1\n"})
    run = cli("push", "dev", "--repo", "r", "--dry-run", "--json", cwd=repo, env=env)
    assert run.rc == 0, run.err
    doc = document(run.out)
    assert (doc["dry_run"], doc["uploaded"], doc["unchanged"], doc["deleted"], doc["bytes"]) == (True, 1, 1, 1, 6)
    assert doc["manifest"] == "planned" and "upload  extra.py  (new, 6 bytes)" in run.err
    assert "dags/r/extra.py" not in str(s3_client.list_objects_v2(Bucket=bucket).get("Contents"))


def test_promote_and_rollback_dry_runs_print_one_json_document(cli, s3_client, bucket, tmp_path):  # noqa: F811
    repo = tmp_path / "r"
    write(repo / "workflow", {"a.py": b"a = 1\n", "b.py": b"b = 1\n"})
    env = env_for(bucket) | env_for(bucket, "stg", "STAGING")
    first = cli("push", "dev", "--repo", "r", "--json", cwd=repo, env=env).summary["manifest_id"]
    write(repo / "workflow", {"c.py": b"c = 1\n"})
    assert cli("push", "dev", "--repo", "r", cwd=repo, env=env).rc == 0

    promote = cli("promote", "dev", "staging", "--repo", "r", "--dry-run", "--json", cwd=repo, env=env)
    assert promote.rc == 0, promote.err
    doc = document(promote.out)
    assert (doc["dry_run"], doc["copied"], doc["deleted"], doc["manifest"]) == (True, 3, 0, "planned")
    assert "copy    a.py  (new, 6 bytes)" in promote.err

    back = cli("push", "dev", "--repo", "r", "--rollback", first, "--dry-run", "--json", cwd=repo, env=env)
    assert back.rc == 0, back.err
    doc = document(back.out)
    assert (doc["dry_run"], doc["manifest_id"], doc["manifest"]) == (True, first, "planned")

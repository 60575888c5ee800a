"""`objsync push ENV --rollback MANIFEST_ID` against a real SeaweedFS: repoint, never re-upload, refuse clearly."""

from __future__ import annotations

from support import pull, put, tree
from test_push import cli, env_for, keys, manifest, write  # noqa: F401 - cli is a fixture

V1 = {"a.py": b"a = 1\n", "b.py": b"b = 1\n"}


def push(cli, repo_dir, files, bucket):
    for old in (repo_dir / "workflow").glob("*") if (repo_dir / "workflow").exists() else ():
        old.unlink()
    write(repo_dir / "workflow", files)
    run = cli("push", "dev", "--repo", "r", "--json", cwd=repo_dir, env=env_for(bucket))
    assert run.rc == 0, run.err
    return run.summary["manifest_id"]


def test_rollback_and_forward_in_a_versioned_bucket(cli, s3_client, bucket, tmp_path, aws_env):
    s3_client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v1 = push(cli, tmp_path / "r", V1, bucket)
    v2_files = {"a.py": b"a = 2\n", "c.py": b"c = 2\n"}
    v2 = push(cli, tmp_path / "r", v2_files, bucket)
    before = keys(s3_client, bucket, "dags/r/")

    run = cli("push", "dev", "--repo", "r", "--rollback", v1, "--json", cwd=tmp_path, env=env_for(bucket))
    assert run.rc == 0, run.err
    s = run.summary
    assert (s["uploaded"], s["manifest_id"], s["manifest"]) == (0, v1, "written")
    assert (s["checked"], s["unchanged"]) == (2, 2) and "rollback dev: 2 of 2 objects as published" in run.err
    assert manifest(s3_client, bucket, "dags", "r").id == v1
    assert keys(s3_client, bucket, "dags/r/") == before  # nothing uploaded, nothing deleted
    d = tmp_path / "d"
    assert pull(f"s3://{bucket}/dags", d, env=aws_env).rc == 0
    assert tree(d) == {f"r/{k}": v for k, v in V1.items()}  # b.py and the old a.py, by VersionId

    again = cli("push", "dev", "--repo", "r", "--rollback", v1, "--json", cwd=tmp_path, env=env_for(bucket))
    assert again.rc == 0 and again.summary["manifest"] == "unchanged"
    forward = cli("push", "dev", "--repo", "r", "--rollback", v2, cwd=tmp_path, env=env_for(bucket))
    assert forward.rc == 0, forward.err
    assert pull(f"s3://{bucket}/dags", d, env=aws_env).rc == 0
    assert tree(d) == {f"r/{k}": v for k, v in v2_files.items()}


def test_rollback_without_versioning_only_while_the_objects_are_unchanged(cli, s3_client, bucket, tmp_path, aws_env):
    v1 = push(cli, tmp_path / "r", V1, bucket)
    v2 = push(cli, tmp_path / "r", V1 | {"broken.py": b"raise SystemExit\n"}, bucket)
    d = tmp_path / "d"
    assert pull(f"s3://{bucket}/dags", d, env=aws_env).rc == 0 and "r/broken.py" in tree(d)
    run = cli("push", "dev", "--repo", "r", "--rollback", v1, cwd=tmp_path, env=env_for(bucket))
    assert run.rc == 0, run.err
    assert pull(f"s3://{bucket}/dags", d, env=aws_env).rc == 0
    assert tree(d) == {f"r/{k}": v for k, v in V1.items()}

    push(cli, tmp_path / "r", {"a.py": b"a = 3\n", "b.py": V1["b.py"]}, bucket)
    run = cli("push", "dev", "--repo", "r", "--rollback", v2, "--json", cwd=tmp_path, env=env_for(bucket))
    assert run.rc == 1
    (error,) = run.summary["errors"]
    assert error["key"] == f"s3://{bucket}/dags/r/"
    assert f"cannot roll back to {v2}: 2 of its 3 objects are not as published" in error["error"]
    assert "rollback dev: 1 of 3 objects as published, nothing uploaded, manifest - not written" in run.err
    assert (run.summary["checked"], run.summary["unchanged"]) == (3, 1)
    assert "a.py: ETag is now" in error["error"] and "broken.py: deleted since" in error["error"]
    assert "push it instead" in error["error"]
    assert manifest(s3_client, bucket, "dags", "r").files[0].etag == keys(s3_client, bucket)["dags/r/a.py"]


def test_rollback_to_an_unknown_version_is_refused(cli, s3_client, bucket, tmp_path):
    push(cli, tmp_path / "r", V1, bucket)
    run = cli("push", "dev", "--repo", "r", "--rollback", "0123456789abcdef", cwd=tmp_path, env=env_for(bucket))
    assert run.rc == 1 and "no version 0123456789abcdef in the history of repo 'r'" in run.err
    assert "rollback dev: no object checked, nothing uploaded" in run.err
    put(s3_client, bucket, {"dags/.objsync/history/r/fedcba9876543210.json": b"{}"})
    run = cli("push", "dev", "--repo", "r", "--rollback", "fedcba9876543210", cwd=tmp_path, env=env_for(bucket))
    assert run.rc == 1 and "is not valid" in run.err
    bad = cli("push", "dev", "--repo", "r", "--rollback", "HEAD~1", cwd=tmp_path, env=env_for(bucket))
    assert bad.rc == 2 and "not a manifest id" in bad.err

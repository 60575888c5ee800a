"""`objsync pull --once` against a real SeaweedFS: the rules of issue-level behaviour, end to end."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest
from boto3.s3.transfer import TransferConfig
from support import objsync, pull, put, tree

DAGS = {
    "dags/a.py": b"from airflow import DAG\n",
    "dags/team/b.py": b"x = 1\n" * 100,
    "dags/team/lib/helpers.py": b"def f():\n    return 2\n",
    "dags/.airflowignore": b"team/lib/\n",
}


def expected(objects, prefix="dags/"):
    return {k[len(prefix):]: v for k, v in objects.items() if k.startswith(prefix)}


@pytest.fixture
def dags(s3_client, bucket):
    put(s3_client, bucket, DAGS)
    return f"s3://{bucket}/dags"


def test_cold_pull_mirrors_prefix_and_ignores_siblings(s3_client, bucket, dags, tmp_path, aws_env):
    put(s3_client, bucket, {"dags_old/x.py": b"old", "dags/marker/": b"", "other.txt": b"o"})
    run = pull(dags, tmp_path / "d", env=aws_env)
    assert run.rc == 0, run.err
    assert tree(tmp_path / "d") == expected(DAGS)
    s = run.summary
    assert (s["listed"], s["fetched"], s["deleted"], s["errors"]) == (5, 4, 0, [])
    assert s["bytes"] == sum(len(v) for v in DAGS.values())
    assert set(s) >= {"listed", "fetched", "deleted", "skipped", "bytes", "seconds", "errors"}


def test_trailing_slash_and_empty_prefix(s3_client, bucket, dags, tmp_path, aws_env):
    assert pull(dags + "/", tmp_path / "slash", env=aws_env).rc == 0
    assert tree(tmp_path / "slash") == expected(DAGS)
    put(s3_client, bucket, {"top.txt": b"t"})
    assert pull(f"s3://{bucket}", tmp_path / "all", env=aws_env).rc == 0
    assert tree(tmp_path / "all") == DAGS | {"top.txt": b"t"}


def test_second_run_fetches_and_reads_nothing(dags, tmp_path, aws_env):
    assert pull(dags, tmp_path / "d", env=aws_env).rc == 0
    s = pull(dags, tmp_path / "d", env=aws_env).summary
    assert (s["fetched"], s["verified"], s["deleted"], s["skipped"]) == (0, 0, 0, 4)


def test_local_damage_is_detected_and_restored(dags, tmp_path, aws_env):
    d = tmp_path / "d"
    assert pull(dags, d, env=aws_env).rc == 0
    (d / "a.py").write_bytes(b"edited by hand\n")
    with open(d / "team/b.py", "r+b") as fh:
        fh.truncate(10)
    (d / "team/lib/helpers.py").unlink()
    os.utime(d / ".airflowignore", ns=(1, 1))  # touched only: bytes still right
    s = pull(dags, d, env=aws_env).summary
    assert (s["fetched"], s["verified"]) == (3, 1)
    assert tree(d) == expected(DAGS)


def test_changed_object_is_refetched(s3_client, bucket, dags, tmp_path, aws_env):
    d = tmp_path / "d"
    assert pull(dags, d, env=aws_env).rc == 0
    put(s3_client, bucket, {"dags/a.py": b"changed\n", "dags/new.py": b"new\n"})
    s = pull(dags, d, env=aws_env).summary
    assert s["fetched"] == 2
    assert (d / "a.py").read_bytes() == b"changed\n" and (d / "new.py").read_bytes() == b"new\n"


def test_adopts_files_of_a_previous_tool_including_multipart(s3_client, bucket, dags, tmp_path, aws_env):
    big = os.urandom(11 * 1024 * 1024)
    cfg = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    s3_client.upload_fileobj(__import__("io").BytesIO(big), bucket, "dags/big.bin", Config=cfg)
    etag = s3_client.head_object(Bucket=bucket, Key="dags/big.bin")["ETag"].strip('"')
    assert etag.endswith("-3")
    d = tmp_path / "d"
    assert pull(dags, d, env=aws_env).rc == 0
    shutil.rmtree(d / ".objsync")  # as if objinsync had filled the folder
    s = pull(dags, d, env=aws_env).summary
    assert (s["fetched"], s["verified"]) == (0, 5)
    # A multipart ETag, now cached, never causes a download again.
    s = pull(dags, d, env=aws_env).summary
    assert (s["fetched"], s["verified"]) == (0, 0)
    assert (d / "big.bin").read_bytes() == big


def test_adoption_downloads_a_local_file_whose_bytes_differ(dags, tmp_path, aws_env):
    d = tmp_path / "d"
    d.mkdir()
    (d / "a.py").write_bytes(b"X" * len(DAGS["dags/a.py"]))  # same size, other bytes
    s = pull(dags, d, env=aws_env).summary
    assert s["fetched"] == 4 and tree(d) == expected(DAGS)


def test_adoption_never_changes_the_mode_of_a_file_linked_from_elsewhere(dags, tmp_path, aws_env):
    d, outside = tmp_path / "d", tmp_path / "outside.py"
    d.mkdir()
    outside.write_bytes(DAGS["dags/a.py"])  # right bytes, but shared with a path outside the folder
    outside.chmod(0o600)
    os.link(outside, d / "a.py")
    s = pull(dags, d, env=aws_env).summary
    assert s["fetched"] == 4 and tree(d) == expected(DAGS)
    assert (outside.stat().st_mode & 0o777, outside.stat().st_nlink) == (0o600, 1)
    assert (d / "a.py").stat().st_mode & 0o777 == 0o664


def test_deletes_and_prunes_empty_folders(s3_client, bucket, dags, tmp_path, aws_env):
    d = tmp_path / "d"
    assert pull(dags, d, env=aws_env).rc == 0
    (d / "stray.py").write_bytes(b"not in the bucket")
    s3_client.delete_object(Bucket=bucket, Key="dags/team/lib/helpers.py")
    s = pull(dags, d, env=aws_env).summary
    assert s["deleted"] == 2
    assert not (d / "team/lib").exists() and (d / "team").is_dir()
    assert tree(d) == {k: v for k, v in expected(DAGS).items() if k != "team/lib/helpers.py"}


def test_excluded_files_are_never_fetched_overwritten_or_deleted(s3_client, bucket, dags, tmp_path, aws_env):
    d = tmp_path / "d"
    d.mkdir()
    (d / "local_only.pyc").write_bytes(b"mine")
    (d / "team").mkdir()
    (d / "team/b.py").write_bytes(b"my own b")
    run = pull(dags, d, "-e", "**/*.pyc", "--exclude", "team/**,nothing", env=aws_env)
    assert run.rc == 0, run.err
    assert tree(d) == {"a.py": DAGS["dags/a.py"], ".airflowignore": DAGS["dags/.airflowignore"],
                       "local_only.pyc": b"mine", "team/b.py": b"my own b"}


def test_include_limits_the_mirror(dags, tmp_path, aws_env):
    d = tmp_path / "d"
    assert pull(dags, d, "--include", "team/**", env=aws_env).rc == 0
    assert set(tree(d)) == {"team/b.py", "team/lib/helpers.py"}


def test_file_mode_and_mtime(s3_client, bucket, dags, tmp_path, aws_env):
    d = tmp_path / "d"
    assert pull(dags, d, "-m", "0640", env=aws_env).rc == 0
    st = (d / "a.py").stat()
    assert stat.S_IMODE(st.st_mode) == 0o640
    head = s3_client.head_object(Bucket=bucket, Key="dags/a.py")
    assert abs(st.st_mtime - head["LastModified"].timestamp()) < 1


def test_many_files_through_the_worker_pool(s3_client, bucket, tmp_path, aws_env):
    objects = {f"many/r{i % 7}/d{i % 13}/f{i}.py": os.urandom(200 + i * 37 % 5000) for i in range(300)}
    put(s3_client, bucket, objects)
    d = tmp_path / "d"
    run = pull(f"s3://{bucket}/many", d, "--workers", "2", "--threads", "4", env=aws_env)
    assert run.rc == 0, run.err
    assert run.summary["fetched"] == 300
    assert tree(d) == expected(objects, "many/")
    assert list((d / ".objsync/tmp").iterdir()) == []


def test_unsafe_keys_are_reported_and_the_rest_syncs(s3_client, bucket, tmp_path, aws_env):
    # SeaweedFS itself refuses names over 255 bytes and turns backslashes into '/': the planner's
    # unit tests cover those classes.
    put(s3_client, bucket, {"p/ok.py": b"ok", "p/ctl\x01.py": b"bad", "p/tab\t.py": b"bad",
                            "p/.objsync/history/r/0123456789abcdef.json": b"{}"})
    d = tmp_path / "d"
    run = pull(f"s3://{bucket}/p", d, env=aws_env)
    assert run.rc == 1
    errors = {e["key"]: e["error"] for e in run.summary["errors"]}
    assert set(errors) == {"p/ctl\x01.py", "p/tab\t.py"}
    assert tree(d) == {"ok.py": b"ok"}
    assert "ctl" in run.err  # each rejected key is also named in the log


def test_symlinked_folder_leaving_the_destination_is_replaced_not_written_through(
        s3_client, bucket, tmp_path, aws_env):
    outside = tmp_path / "outside"
    outside.mkdir()
    d = tmp_path / "d"
    d.mkdir()
    (d / "team").symlink_to(outside)
    put(s3_client, bucket, {"s/team/x.py": b"x", "s/fine.py": b"fine"})
    run = pull(f"s3://{bucket}/s", d, env=aws_env)
    assert run.rc == 0, run.err
    assert list(outside.iterdir()) == []
    assert not (d / "team").is_symlink() and tree(d) == {"team/x.py": b"x", "fine.py": b"fine"}


def test_excluded_symlinked_folder_is_never_written_through(s3_client, bucket, tmp_path, aws_env):
    outside = tmp_path / "outside"
    outside.mkdir()
    d = tmp_path / "d"
    d.mkdir()
    (d / "team").symlink_to(outside)
    put(s3_client, bucket, {"s/team/evil.py": b"evil", "s/fine.py": b"fine"})
    # Only 'fine.py' and 'team/**' are mirrored, so the local symlink 'team' is not ours to remove.
    run = pull(f"s3://{bucket}/s", d, "--include", "team/**,fine.py", env=aws_env)
    assert run.rc == 1
    assert list(outside.iterdir()) == [] and (d / "team").is_symlink()
    assert run.summary["errors"][0]["key"] == "s/team/evil.py"
    assert "in the way" in run.summary["errors"][0]["error"]
    assert (d / "fine.py").read_bytes() == b"fine"


def test_local_symlink_at_a_key_is_replaced_not_followed(s3_client, bucket, tmp_path, aws_env):
    target = tmp_path / "precious.txt"
    target.write_bytes(b"precious")
    d = tmp_path / "d"
    d.mkdir()
    (d / "a.py").symlink_to(target)
    put(s3_client, bucket, {"s/a.py": b"from bucket"})
    assert pull(f"s3://{bucket}/s", d, env=aws_env).rc == 0
    assert target.read_bytes() == b"precious"
    assert not (d / "a.py").is_symlink() and (d / "a.py").read_bytes() == b"from bucket"


def test_file_and_folder_swap_places(s3_client, bucket, tmp_path, aws_env):
    d = tmp_path / "d"
    put(s3_client, bucket, {"s/x/inner.py": b"inner", "s/y": b"file y"})
    assert pull(f"s3://{bucket}/s", d, env=aws_env).rc == 0
    s3_client.delete_object(Bucket=bucket, Key="s/x/inner.py")
    s3_client.delete_object(Bucket=bucket, Key="s/y")
    put(s3_client, bucket, {"s/x": b"now a file", "s/y/inner.py": b"now a folder"})
    run = pull(f"s3://{bucket}/s", d, env=aws_env)
    assert run.rc == 0, run.err
    assert tree(d) == {"x": b"now a file", "y/inner.py": b"now a folder"}


def test_missing_destination_is_created_and_a_file_is_refused(dags, tmp_path, aws_env):
    assert pull(dags, tmp_path / "a/b/c", env=aws_env).rc == 0
    (tmp_path / "file").write_bytes(b"x")
    run = objsync("pull", "--once", dags, str(tmp_path / "file"), env=aws_env)
    assert run.rc == 1 and "not a directory" in run.err


def test_corrupt_cache_is_set_aside_and_nothing_is_downloaded_again(dags, tmp_path, aws_env):
    d = tmp_path / "d"
    assert pull(dags, d, env=aws_env).rc == 0
    db = d / ".objsync/cache/cache.db"
    db.write_bytes(b"this is not sqlite" * 100)
    run = pull(dags, d, env=aws_env)
    assert run.rc == 0, run.err
    assert "moved it to" in run.err
    assert (run.summary["fetched"], run.summary["verified"]) == (0, 4)
    assert pull(dags, d, env=aws_env).summary["verified"] == 0


def test_cache_of_another_prefix_is_not_trusted(s3_client, bucket, dags, tmp_path, aws_env):
    d = tmp_path / "d"
    assert pull(dags, d, env=aws_env).rc == 0
    put(s3_client, bucket, {"other/a.py": DAGS["dags/a.py"]})
    s = pull(f"s3://{bucket}/other", d, env=aws_env).summary
    assert (s["fetched"], s["verified"], s["deleted"]) == (0, 1, 3)


def test_dry_run_changes_nothing(s3_client, bucket, dags, tmp_path, aws_env):
    d = tmp_path / "d"
    d.mkdir()
    (d / "stray.py").write_bytes(b"s")
    run = objsync("pull", "--once", "--dry-run", dags, str(d), env=aws_env)
    assert run.rc == 0, run.err
    assert "fetch   a.py  (new)" in run.out and "delete  stray.py" in run.out
    assert tree(d) == {"stray.py": b"s"}


def test_empty_listing_keeps_local_files(s3_client, bucket, tmp_path, aws_env):
    d = tmp_path / "d"
    d.mkdir()
    (d / "keep.py").write_bytes(b"k")
    run = pull(f"s3://{bucket}/typo", d, env=aws_env)
    assert run.rc == 1 and "listing is empty" in run.summary["errors"][0]["error"]
    assert tree(d) == {"keep.py": b"k"}
    assert pull(f"s3://{bucket}/typo", d, "--allow-empty", env=aws_env).rc == 0
    assert tree(d) == {}


def test_a_mistyped_prefix_into_an_empty_folder_is_named_in_a_warning(dags, tmp_path, aws_env):
    run = pull(dags.replace("/dags", "/dgas"), tmp_path / "d", env=aws_env)
    assert run.rc == 0 and run.summary["listed"] == 0
    assert f"{dags.replace('/dags', '/dgas')} holds no objects to mirror" in run.err
    assert "holds no objects" not in pull(dags, tmp_path / "d", env=aws_env).err


def test_default_max_delete_holds_back_a_pass_that_would_empty_most_of_the_folder(s3_client, bucket, tmp_path,
                                                                                  aws_env):
    put(s3_client, bucket, {f"a/f{i}.py": b"a" for i in range(30)} | {"b/new.py": b"new", "b/f0.py": b"b"})
    d = tmp_path / "d"
    assert pull(f"s3://{bucket}/a", d, env=aws_env).rc == 0
    run = pull(f"s3://{bucket}/b", d, env=aws_env)  # a prefix that points elsewhere
    assert run.rc == 1
    assert run.summary["deleted"] == 0 and len(tree(d)) == 31
    error = run.summary["errors"][0]["error"]
    assert "29 deletes exceed the default --max-delete" in error and "15 of 30" in error
    run = pull(f"s3://{bucket}/b", d, "--max-delete", "100%", env=aws_env)
    assert run.rc == 0 and tree(d) == {"new.py": b"new", "f0.py": b"b"}


def test_listing_failure_is_an_error_and_deletes_nothing(tmp_path, aws_env):
    d = tmp_path / "d"
    d.mkdir()
    (d / "keep.py").write_bytes(b"k")
    run = pull("s3://no-such-bucket-here/p", d, env=aws_env)
    assert run.rc == 1 and "NoSuchBucket" in run.err
    assert tree(d) == {"keep.py": b"k"}


@pytest.mark.parametrize("args, why", [
    (["pull", "--once", "http://x/y", "d"], "not an S3 URI"),
    (["pull", "--once", "-m", "999", "s3://b", "d"], "octal"),
    (["pull", "--once", "-i", "soon", "s3://b", "d"], "duration"),
    (["pull", "--once", "--max-delete", "lots", "s3://b", "d"], "percentage"),
    (["pull"], "required"),
])
def test_usage_errors_exit_2_with_a_message(args, why, tmp_path, aws_env):
    run = objsync(*args, env=aws_env)
    assert run.rc == 2 and why in run.err


def test_second_instance_is_refused(dags, tmp_path, aws_env):
    from objsync.pull.localfs import DirLock, prepare_root
    d = tmp_path / "d"
    prepare_root(d)
    with DirLock(d):
        run = pull(dags, d, env=aws_env)
    assert run.rc == 1 and f"pid {os.getpid()}" in run.err
    assert pull(dags, d, env=aws_env).rc == 0  # the lock goes with its holder


def test_objinsync_alias_and_flags(dags, tmp_path, aws_env):
    exe = Path(shutil.which("objinsync") or Path(os.sys.executable).parent / "objinsync")
    import subprocess
    env = dict(os.environ) | aws_env
    endpoint = env.pop("AWS_ENDPOINT_URL")
    proc = subprocess.run([str(exe), "pull", "--once", "--s3-endpoint", endpoint, "-m", "0644",
                           "-e", "team/**", dags, str(tmp_path / "d")], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert set(tree(tmp_path / "d")) == {"a.py", ".airflowignore"}

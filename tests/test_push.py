"""`objsync push` and `objsync promote` against a real SeaweedFS, end to end."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
from pathlib import Path

import pytest
from support import Run, md5, pull, tree

from objsync.manifest import Manifest
from objsync.push import cli as push_cli
from objsync.push.envs import COMMIT_VARS, REPO_VARS
from objsync.push.publish import publish
from objsync.push.source import scan_source
from objsync.push.target import Target
from objsync.s3.bucket import Bucket
from objsync.s3.config import Location, RemoteConfig

WORKFLOW = {
    "hello_dag.py": b"from datetime import datetime\n\nSCHEDULE = '@daily'\nSTART = datetime(2024, 1, 1)\n",
    "helpers/__init__.py": b"",
    "helpers/greeting.py": b"def greet(name):\n    return f'hello {name}'\n",
    ".airflowignore": b"helpers/\n",
    "sql/report.sql": b"select 1;\n",
    "data/blob.bin": bytes(range(256)) * 13,
}
DROPPINGS = {
    "__pycache__/hello_dag.cpython-311.pyc": b"\x00bytecode",
    "helpers/greeting.py~": b"backup",
    "helpers/.#greeting.py": b"emacs lock",
    ".hello_dag.py.swp": b"vim swap",
    ".DS_Store": b"finder",
    "helpers/old.pyc": b"\x00",
}
BIG = 9 * 1024 * 1024 + 123  # above the 8 MiB multipart threshold: two parts


@pytest.fixture
def cli(monkeypatch, capsys, caplog, aws_env):
    """Run `objsync push|promote ARGS` in-process from a folder, with only the given CI variables set."""
    base = {k: v for k, v in os.environ.items() if k not in COMMIT_VARS and k not in dict(REPO_VARS)}

    def run(*argv: str, cwd: Path, env: dict[str, str] | None = None) -> Run:
        monkeypatch.chdir(cwd)
        parser = argparse.ArgumentParser(prog="objsync")
        push_cli.register(parser.add_subparsers(dest="command", required=True))
        capsys.readouterr()
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="objsync"):
            try:
                args = parser.parse_args(argv)
                rc = args.func(args, base | (env or {}), parser)
            except SystemExit as exc:
                rc = exc.code
        out, err = capsys.readouterr()
        return Run(rc, out, err + caplog.text)

    return run


@pytest.fixture
def staging(s3_client, bucket):
    """A second bucket, for promotes."""
    name = bucket + "-stg"
    s3_client.create_bucket(Bucket=name)
    yield name
    with contextlib.suppress(Exception):
        for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=name):
            s3_client.delete_objects(Bucket=name, Delete={"Objects": [{"Key": o["Key"]} for o in page.get("Contents", [])]})
        s3_client.delete_bucket(Bucket=name)


def write(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def keys(client, bucket: str, prefix: str = "") -> dict[str, str]:
    """Every key below `prefix` with its ETag."""
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out.update({o["Key"]: o["ETag"].strip('"') for o in page.get("Contents", [])})
    return out


def manifest(client, bucket: str, prefix: str, repo: str) -> Manifest:
    body = client.get_object(Bucket=bucket, Key=f"{prefix}/.objsync/manifests/{repo}.json")["Body"].read()
    return Manifest.from_json(body)


def env_for(bucket: str, prefix: str = "dags", name: str = "DEV") -> dict[str, str]:
    return {f"OBJSYNC_ENV_{name}_URL": f"s3://{bucket}/{prefix}"}


def test_push_then_pull_round_trips_byte_exact(cli, s3_client, bucket, tmp_path, aws_env):
    repo = tmp_path / "team-dags"
    write(repo / "workflow", WORKFLOW | DROPPINGS)
    run = cli("push", "dev", "--json", cwd=repo, env=env_for(bucket) | {"GITHUB_SHA": "ab" * 20})
    assert run.rc == 0, run.err
    assert run.summary["uploaded"] == len(WORKFLOW) and run.summary["manifest"] == "written"

    pulled = pull(f"s3://{bucket}/dags", tmp_path / "DAGS", env=aws_env)
    assert pulled.rc == 0, pulled.err
    assert tree(tmp_path / "DAGS") == {f"team-dags/{rel}": data for rel, data in WORKFLOW.items()}

    m = manifest(s3_client, bucket, "dags", "team-dags")
    assert m.id == run.summary["manifest_id"] and m.commit == "ab" * 20 and m.promoted_from is None
    assert {f.path: (f.size, f.md5) for f in m.files} == {r: (len(d), md5(d)) for r, d in WORKFLOW.items()}
    history = s3_client.get_object(Bucket=bucket, Key=f"dags/.objsync/history/team-dags/{m.id}.json")["Body"].read()
    assert history == m.to_json()


def test_two_repos_share_a_prefix_and_deletes_stay_in_their_namespace(cli, s3_client, bucket, tmp_path):
    # 'a' and 'a-old': a prefix without its trailing slash would let one delete the other's files.
    for name in ("a", "a-old"):
        write(tmp_path / name / "workflow", {f"{name}.py": b"x = 1\n", "shared.py": b"y = 2\n"})
        assert cli("push", "dev", "--repo", name, cwd=tmp_path / name, env=env_for(bucket)).rc == 0
    before = keys(s3_client, bucket, "dags/a-old/")
    (tmp_path / "a" / "workflow" / "shared.py").unlink()
    run = cli("push", "dev", "--repo", "a", "--json", cwd=tmp_path / "a", env=env_for(bucket))
    assert run.rc == 0, run.err
    assert (run.summary["uploaded"], run.summary["deleted"]) == (0, 1)
    assert set(keys(s3_client, bucket, "dags/a/")) == {"dags/a/a.py"}
    assert keys(s3_client, bucket, "dags/a-old/") == before == {
        "dags/a-old/a-old.py": md5(b"x = 1\n"), "dags/a-old/shared.py": md5(b"y = 2\n")}
    assert [f.path for f in manifest(s3_client, bucket, "dags", "a-old").files] == ["a-old.py", "shared.py"]


def test_unchanged_tree_uploads_nothing_including_a_multipart_file(cli, s3_client, bucket, tmp_path):
    repo = tmp_path / "r"
    write(repo / "workflow", WORKFLOW | {"models/big.bin": os.urandom(BIG)})
    first = cli("push", "dev", "--repo", "r", "--json", cwd=repo, env=env_for(bucket))
    assert first.rc == 0, first.err
    listed = s3_client.list_objects_v2(Bucket=bucket, Prefix="dags/")["Contents"]
    assert keys(s3_client, bucket, "dags/r/models/")["dags/r/models/big.bin"].endswith("-2")

    again = cli("push", "dev", "--repo", "r", "--json", cwd=repo, env=env_for(bucket))
    assert again.rc == 0, again.err
    assert (again.summary["uploaded"], again.summary["unchanged"], again.summary["manifest"]) == (
        0, len(WORKFLOW) + 1, "unchanged")
    # Without the manifest the ETags alone must match, the multipart one included.
    s3_client.delete_object(Bucket=bucket, Key="dags/.objsync/manifests/r.json")
    third = cli("push", "dev", "--repo", "r", "--json", cwd=repo, env=env_for(bucket))
    assert (third.rc, third.summary["uploaded"], third.summary["manifest"]) == (0, 0, "written")
    after = {o["Key"]: o["LastModified"] for o in s3_client.list_objects_v2(Bucket=bucket, Prefix="dags/r/")["Contents"]}
    assert after == {o["Key"]: o["LastModified"] for o in listed if o["Key"].startswith("dags/r/")}


def test_syntax_error_blocks_the_push_with_file_and_line(cli, s3_client, bucket, tmp_path):
    repo = tmp_path / "r"
    write(repo / "workflow", WORKFLOW | {"dags/broken.py": b"import os\n\ndef f(:\n    pass\n"})
    run = cli("push", "dev", "--repo", "r", "--json", cwd=repo, env=env_for(bucket))
    assert run.rc == 1
    assert "workflow/dags/broken.py:3" in run.err and "--no-compile-check" in run.err
    assert run.summary["errors"][0]["key"] == os.path.join("workflow", "dags", "broken.py") + ":3"
    assert keys(s3_client, bucket) == {}

    forced = cli("push", "dev", "--repo", "r", "--no-compile-check", cwd=repo, env=env_for(bucket))
    assert forced.rc == 0, forced.err
    assert "dags/r/dags/broken.py" in keys(s3_client, bucket, "dags/r/")


def test_unsafe_file_name_blocks_the_push(cli, s3_client, bucket, tmp_path):
    repo = tmp_path / "r"
    write(repo / "workflow", {"ok.py": b"x = 1\n", "bad\\name.py": b"y = 2\n"})
    run = cli("push", "dev", "--repo", "r", cwd=repo, env=env_for(bucket))
    assert run.rc == 1 and "bad\\name.py" in run.err and "backslash" in run.err
    assert keys(s3_client, bucket) == {}


def test_promote_copies_exactly_the_manifest_files(cli, s3_client, bucket, staging, tmp_path):
    repo = tmp_path / "r"
    write(repo / "workflow", WORKFLOW | {"models/big.bin": os.urandom(BIG)})
    env = env_for(bucket) | env_for(staging, "airflow/dags", "STAGING")
    assert cli("push", "dev", "--repo", "r", cwd=repo, env=env | {"CI_COMMIT_SHA": "c" * 40}).rc == 0
    source = manifest(s3_client, bucket, "dags", "r")
    # Not in the manifest: a stray object in dev, and a stale one in staging; other repos stay as they are.
    s3_client.put_object(Bucket=bucket, Key="dags/r/stray.py", Body=b"not published")
    s3_client.put_object(Bucket=staging, Key="airflow/dags/r/stale.py", Body=b"old")
    s3_client.put_object(Bucket=staging, Key="airflow/dags/r-other/keep.py", Body=b"other repo")

    run = cli("promote", "dev", "staging", "--repo", "r", "--json", cwd=repo, env=env)
    assert run.rc == 0, run.err
    assert (run.summary["copied"], run.summary["deleted"]) == (len(source.files), 1)
    copied = keys(s3_client, staging, "airflow/dags/r/")
    assert set(copied) == {f"airflow/dags/r/{f.path}" for f in source.files}
    for f in source.files:
        body = s3_client.get_object(Bucket=staging, Key=f"airflow/dags/r/{f.path}")["Body"].read()
        assert md5(body) == f.md5
    assert "airflow/dags/r-other/keep.py" in keys(s3_client, staging)
    dest = manifest(s3_client, staging, "airflow/dags", "r")
    assert dest.id == source.id == run.summary["manifest_id"] and dest.commit == "c" * 40
    assert (dest.promoted_from.env, dest.promoted_from.url, dest.promoted_from.manifest_id) == (
        "dev", f"s3://{bucket}/dags", source.id)

    again = cli("promote", "dev", "staging", "--repo", "r", "--json", cwd=repo, env=env)
    assert (again.rc, again.summary["copied"], again.summary["manifest"]) == (0, 0, "unchanged")


def test_promote_between_endpoints_streams_the_bytes(cli, seaweed, s3_client, bucket, staging, tmp_path):
    repo = tmp_path / "r"
    big = os.urandom(BIG)
    write(repo / "workflow", {"a.py": b"a = 1\n", "big.bin": big})
    other_endpoint = seaweed.endpoint_url.replace("127.0.0.1", "localhost")
    env = env_for(bucket) | env_for(staging, "dags", "STAGING") | {"OBJSYNC_ENV_STAGING_ENDPOINT_URL": other_endpoint}
    assert cli("push", "dev", "--repo", "r", cwd=repo, env=env).rc == 0
    run = cli("promote", "dev", "staging", "--repo", "r", "--json", cwd=repo, env=env)
    assert run.rc == 0, run.err
    assert run.summary["copied"] == 2
    assert s3_client.get_object(Bucket=staging, Key="dags/r/big.bin")["Body"].read() == big
    assert manifest(s3_client, staging, "dags", "r").id == manifest(s3_client, bucket, "dags", "r").id


def test_promote_pins_the_manifest_version_in_a_versioned_bucket(cli, s3_client, bucket, staging, tmp_path):
    s3_client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    repo = tmp_path / "r"
    write(repo / "workflow", {"a.py": b"a = 1\n", "b.py": b"b = 1\n"})
    env = env_for(bucket) | env_for(staging, "dags", "STAGING")
    assert cli("push", "dev", "--repo", "r", cwd=repo, env=env).rc == 0
    m = manifest(s3_client, bucket, "dags", "r")
    heads = {f.path: s3_client.head_object(Bucket=bucket, Key=f"dags/r/{f.path}")["VersionId"] for f in m.files}
    assert {f.path: f.version_id for f in m.files} == heads
    s3_client.put_object(Bucket=bucket, Key="dags/r/a.py", Body=b"a = 'overwritten after the push'\n")

    run = cli("promote", "dev", "staging", "--repo", "r", cwd=repo, env=env)
    assert run.rc == 0, run.err
    assert s3_client.get_object(Bucket=staging, Key="dags/r/a.py")["Body"].read() == b"a = 1\n"


def test_promote_without_a_source_manifest_is_an_error(cli, s3_client, bucket, tmp_path):
    env = env_for(bucket) | env_for(bucket, "stg", "STAGING")
    run = cli("promote", "dev", "staging", "--repo", "r", "--json", cwd=tmp_path, env=env)
    assert run.rc == 1
    assert f"s3://{bucket}/dags/.objsync/manifests/r.json" in run.err and "objsync push dev" in run.err
    assert keys(s3_client, bucket) == {}


def test_mass_delete_guard_and_empty_source(cli, s3_client, bucket, tmp_path):
    repo = tmp_path / "r"
    write(repo / "workflow", {f"d{i}.py": b"x = %d\n" % i for i in range(5)})
    assert cli("push", "dev", "--repo", "r", cwd=repo, env=env_for(bucket)).rc == 0
    published = keys(s3_client, bucket)
    for i in range(4):
        (repo / "workflow" / f"d{i}.py").unlink()
    (repo / "workflow" / "new.py").write_bytes(b"new = 1\n")
    held = cli("push", "dev", "--repo", "r", "--max-delete", "50%", cwd=repo, env=env_for(bucket))
    assert held.rc == 1 and "--max-delete 50%" in held.err
    assert keys(s3_client, bucket) == published  # nothing uploaded, nothing deleted

    (repo / "workflow" / "d4.py").unlink()
    (repo / "workflow" / "new.py").unlink()
    empty = cli("push", "dev", "--repo", "r", cwd=repo, env=env_for(bucket))
    assert empty.rc == 1 and "--allow-empty" in empty.err and keys(s3_client, bucket) == published
    allowed = cli("push", "dev", "--repo", "r", "--allow-empty", "--json", cwd=repo, env=env_for(bucket))
    assert allowed.rc == 0 and allowed.summary["deleted"] == 5
    assert keys(s3_client, bucket, "dags/r/") == {} and manifest(s3_client, bucket, "dags", "r").files == ()


def test_config_file_from_a_subfolder_and_dry_run(cli, s3_client, bucket, tmp_path):
    repo = tmp_path / "checkout"
    (repo / ".git").mkdir(parents=True)
    write(repo / "airflow", WORKFLOW)
    (repo / "objsync.toml").write_text(
        f'source = "airflow"\nexclude = ["sql/**"]\n\n[environments.dev]\nurl = "s3://{bucket}/dags"\n')
    (repo / "docs").mkdir()
    env = {"GITHUB_REPOSITORY": "acme/pipelines"}
    dry = cli("push", "dev", "--dry-run", "--json", cwd=repo / "docs", env=env)
    assert dry.rc == 0, dry.err
    assert "upload  hello_dag.py" in dry.err and "sql/report.sql" not in dry.err
    assert keys(s3_client, bucket) == {}

    real = cli("push", "dev", "--json", cwd=repo / "docs", env=env)
    assert real.rc == 0, real.err
    assert real.summary["manifest_id"] == dry.summary["manifest_id"]
    assert set(keys(s3_client, bucket, "dags/pipelines/")) == {
        f"dags/pipelines/{rel}" for rel in WORKFLOW if not rel.startswith("sql/")}


def test_unknown_environment_and_bad_repo_name_are_refused(cli, bucket, tmp_path):
    unknown = cli("push", "qa", "--repo", "r", cwd=tmp_path, env=env_for(bucket) | env_for(bucket, "s", "STAGING"))
    assert unknown.rc == 2 and "unknown environment 'qa'" in unknown.err and "dev, staging" in unknown.err
    (tmp_path / "workflow").mkdir()
    bad = cli("push", "dev", cwd=tmp_path, env=env_for(bucket) | {"GITHUB_REPOSITORY": "acme/dags v2"})
    assert bad.rc == 2 and "'dags v2'" in bad.err and "GITHUB_REPOSITORY" in bad.err
    reserved = cli("push", "dev", "--repo", ".objsync", cwd=tmp_path, env=env_for(bucket))
    assert reserved.rc == 2 and "'.objsync'" in reserved.err


def test_a_file_changed_after_the_scan_fails_and_commits_nothing(seaweed, s3_client, bucket, tmp_path, aws_env):
    src = write(tmp_path / "workflow", {"a.py": b"a = 1\n", "b.py": b"b = 1\n"})
    s3_client.put_object(Bucket=bucket, Key="dags/r/stale.py", Body=b"old")
    scan = scan_source(src)
    (src / "b.py").write_bytes(b"b = 2\n")  # same size, other bytes: Content-MD5 no longer matches
    target = Target("dev", Location(bucket, "dags"), RemoteConfig(endpoint_url=seaweed.endpoint_url), "r")
    with Bucket(target.remote, target.bucket) as b:
        report = publish(b, target, scan.files, threads=2)
    assert not report.ok and report.errors[0][0] == "dags/r/b.py" and "changed" in report.errors[0][1]
    assert "dags/r/stale.py" in keys(s3_client, bucket)
    assert "dags/.objsync/manifests/r.json" not in keys(s3_client, bucket)

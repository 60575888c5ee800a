"""Manifest mode against a real SeaweedFS: one LIST per poll, manifests as the truth, bad ones refused."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from faultproxy import FaultProxy
from support import md5, objsync, pull, put, tree
from test_daemon import Daemon, wait_for

from objsync.manifest import FileEntry, Manifest, content_id
from objsync.push.plan import PushRules
from objsync.push.publish import publish
from objsync.push.source import scan_source
from objsync.push.target import Target
from objsync.s3.bucket import Bucket
from objsync.s3.config import Location, RemoteConfig, make_client

REPO_A = {"dag_a.py": b"A = 1\n", "lib/helper.py": b"def h():\n    return 'a1'\n"}
REPO_B = {f"dag_{i}.py": b"B = %d\n" % i for i in range(3)}


class CountingProxy(FaultProxy):
    """Passes every request through to the server and records (method, path) of each."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.seen: list[tuple[str, str]] = []
        super().__init__(upstream, rate=0.0)

    def _handle(self, h) -> None:
        self.seen.append((h.command, h.path))
        super()._handle(h)


@pytest.fixture
def proxy(seaweed):
    host, port = seaweed.endpoint_url.rsplit("//", 1)[1].split(":")
    p = CountingProxy((host, int(port)))
    yield p
    p.close()


def publish_repo(seaweed, bucket: str, repo: str, files: dict[str, bytes], tmp_path: Path, **rules) -> Manifest:
    """`objsync push` of `files` as repo `repo` to s3://bucket/dags; returns the manifest written."""
    src = tmp_path / "src" / repo
    if src.exists():
        for path in sorted(src.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
    for rel, data in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    src.mkdir(parents=True, exist_ok=True)
    remote = RemoteConfig(endpoint_url=seaweed.endpoint_url)
    client = make_client(remote)
    with Bucket(remote, bucket) as b:
        report = publish(b, Target("dev", Location(bucket, "dags"), remote, repo),
                         scan_source(src).files, PushRules(**rules), compile_check=False)
    assert report.ok, report.errors
    body = client.get_object(Bucket=bucket, Key=f"dags/.objsync/manifests/{repo}.json")["Body"].read()
    return Manifest.from_json(body)


def forged(m: Manifest, **changes) -> bytes:
    """A manifest document with one file entry changed and its id made to match again."""
    doc = json.loads(m.to_json())
    doc["files"][0].update(changes)
    files = tuple(FileEntry(**f) for f in doc["files"])
    doc["files"].sort(key=lambda f: f["path"])
    doc["id"] = content_id(files)
    return json.dumps(doc).encode()


def expected(**repos: dict[str, bytes]) -> dict[str, bytes]:
    return {f"{repo}/{rel}": data for repo, files in repos.items() for rel, data in files.items()}


def test_pull_plans_from_manifests_and_still_mirrors_plain_folders(seaweed, s3_client, bucket, tmp_path, aws_env):
    publish_repo(seaweed, bucket, "a", REPO_A, tmp_path)
    publish_repo(seaweed, bucket, "b", REPO_B, tmp_path)
    # Not in a's manifest: written to the bucket by hand after the push, never mirrored.
    put(s3_client, bucket, {"dags/a/stray.py": b"not published", "dags/plain/p.py": b"plain",
                            "dags/.airflowignore": b"plain/\n"})
    d = tmp_path / "d"
    run = pull(f"s3://{bucket}/dags", d, env=aws_env)
    assert run.rc == 0, run.err
    assert run.summary["mode"] == "manifest"
    assert tree(d) == expected(a=REPO_A, b=REPO_B) | {"plain/p.py": b"plain", ".airflowignore": b"plain/\n"}

    # A stray local file in a repo and a deleted plain object are both dealt with, as in LIST mode.
    (d / "a/local_only.py").write_bytes(b"x")
    s3_client.delete_object(Bucket=bucket, Key="dags/plain/p.py")
    run = pull(f"s3://{bucket}/dags", d, env=aws_env)
    assert run.rc == 0, run.err
    assert run.summary["deleted"] == 2
    assert tree(d) == expected(a=REPO_A, b=REPO_B) | {".airflowignore": b"plain/\n"}

    listed = pull(f"s3://{bucket}/dags", tmp_path / "l", "--ignore-manifests", env=aws_env)
    assert listed.summary["mode"] == "list" and "a/stray.py" in tree(tmp_path / "l")


def test_no_op_poll_is_one_request_and_a_change_reads_one_manifest(seaweed, proxy, bucket, tmp_path, aws_env):
    for i in range(5):
        publish_repo(seaweed, bucket, f"r{i}", {"dag.py": b"v = 1\n", "x/y.py": b"y\n"}, tmp_path)
    d = tmp_path / "d"
    with Daemon(f"s3://{bucket}/dags", d, aws_env, "--endpoint-url", proxy.url, "--rescan-every", "1h") as daemon:
        wait_for(lambda: daemon.health() == (200, "GOOD"), what="healthy")
        start = daemon.passes()
        wait_for(lambda: daemon.passes() >= start + 1, what="a pass after the first")
        seen, base = len(proxy.seen), daemon.passes()
        wait_for(lambda: daemon.passes() >= base + 5, what="five no-op polls")
        done = daemon.passes() - base
        polls = proxy.seen[seen:]
        # One LIST of the manifests folder per poll, and nothing else (a pass may be in flight at either end).
        assert done <= len(polls) <= done + 1, polls
        assert all(m == "GET" and "list-type=2" in p and "prefix=dags%2F.objsync%2Fmanifests%2F" in p
                   for m, p in polls), polls

        publish_repo(seaweed, bucket, "r3", {"dag.py": b"v = 2\n", "x/y.py": b"y\n"}, tmp_path)
        seen = len(proxy.seen)
        wait_for(lambda: (d / "r3/dag.py").read_bytes() == b"v = 2\n", what="the new version")
        change = proxy.seen[seen:]
        reads = [p for m, p in change if "list-type=2" not in p]
        assert [p for p in reads if "/dags/r" in p] == [f"/{bucket}/dags/r3/dag.py"], change
        assert [p for p in reads if ".objsync" in p] == [f"/{bucket}/dags/.objsync/manifests/r3.json"], change
        assert not [p for m, p in change if "list-type=2" in p and "manifests" not in p], change
        assert daemon.stop() == 0


def test_restart_reads_no_manifest_again(seaweed, proxy, bucket, tmp_path, aws_env):
    for repo in ("a", "b"):
        publish_repo(seaweed, bucket, repo, REPO_A, tmp_path)
    d = tmp_path / "d"
    assert pull(f"s3://{bucket}/dags", d, "--endpoint-url", proxy.url, env=aws_env).rc == 0
    first = list(proxy.seen)
    assert sum(".objsync/manifests/" in p and "list-type" not in p for _, p in first) == 2
    proxy.seen.clear()
    run = pull(f"s3://{bucket}/dags", d, "--endpoint-url", proxy.url, env=aws_env)
    assert run.rc == 0 and run.summary["fetched"] == 0 and run.summary["mode"] == "manifest"
    # The manifests LIST, then one LIST of the top level to find folders without a manifest.
    assert len(proxy.seen) == 2 and all("list-type=2" in p for _, p in proxy.seen), proxy.seen


@pytest.mark.parametrize("damage, reason", [
    (lambda m: b"{not json", "not a JSON document"),
    (lambda m: forged(m, path="../escape.py"), "unsafe"),
    (lambda m: forged(m, size=-1), "size"),
    (lambda m: m.to_json().replace(b'"repo": "a"', b'"repo": "b"'), "names repo 'b'"),
])
def test_invalid_manifest_is_refused_and_the_repo_stays(damage, reason, seaweed, s3_client, bucket, tmp_path, aws_env):
    m = publish_repo(seaweed, bucket, "a", REPO_A, tmp_path)
    publish_repo(seaweed, bucket, "b", REPO_B, tmp_path)
    d = tmp_path / "d"
    assert pull(f"s3://{bucket}/dags", d, env=aws_env).rc == 0
    put(s3_client, bucket, {"dags/a/dag_a.py": b"A = 2\n", "dags/.objsync/manifests/a.json": damage(m)})
    publish_repo(seaweed, bucket, "b", REPO_B | {"new.py": b"n\n"}, tmp_path)
    run = pull(f"s3://{bucket}/dags", d, env=aws_env)
    assert run.rc == 1
    (error,) = run.summary["errors"]
    assert error["key"] == "dags/.objsync/manifests/a.json"
    assert "repo 'a' refused" in error["error"] and reason in error["error"], error
    assert tree(d) == expected(a=REPO_A, b=REPO_B | {"new.py": b"n\n"})
    # The previous version is still looked after: a deleted file of it is restored.
    (d / "a/lib/helper.py").unlink()
    run = pull(f"s3://{bucket}/dags", d, env=aws_env)
    assert run.rc == 1 and [e["key"] for e in run.summary["errors"]] == ["dags/.objsync/manifests/a.json"]
    assert tree(d) == expected(a=REPO_A, b=REPO_B | {"new.py": b"n\n"})


def test_first_manifest_invalid_leaves_the_folder_untouched(seaweed, s3_client, bucket, tmp_path, aws_env):
    publish_repo(seaweed, bucket, "b", REPO_B, tmp_path)
    d = tmp_path / "d"
    (d / "c").mkdir(parents=True)
    (d / "c/old.py").write_bytes(b"old")
    put(s3_client, bucket, {"dags/c/new.py": b"new", "dags/.objsync/manifests/c.json": b"[]"})
    run = pull(f"s3://{bucket}/dags", d, env=aws_env)
    assert run.rc == 1 and "repo 'c' refused" in run.err
    assert tree(d) == expected(b=REPO_B) | {"c/old.py": b"old"}


def test_each_file_is_checked_against_the_manifest_md5(seaweed, s3_client, bucket, tmp_path, aws_env):
    m = publish_repo(seaweed, bucket, "a", REPO_A, tmp_path)
    wrong = forged(m, md5=md5(b"other bytes"))
    put(s3_client, bucket, {"dags/.objsync/manifests/a.json": wrong})
    d = tmp_path / "d"
    run = pull(f"s3://{bucket}/dags", d, env=aws_env)
    assert run.rc == 1
    (error,) = run.summary["errors"]
    assert error["key"] == "dags/a/dag_a.py" and "manifest's" in error["error"]
    assert "a/dag_a.py" not in tree(d) and tree(d)["a/lib/helper.py"] == REPO_A["lib/helper.py"]


def test_files_are_read_by_the_manifest_version_id(seaweed, s3_client, bucket, tmp_path, aws_env):
    s3_client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    m = publish_repo(seaweed, bucket, "a", REPO_A, tmp_path)
    assert all(f.version_id for f in m.files)
    # Overwritten after the push: the manifest still names the published version, which is what arrives.
    put(s3_client, bucket, {"dags/a/dag_a.py": b"A = 'overwritten by hand'\n"})
    d = tmp_path / "d"
    run = pull(f"s3://{bucket}/dags", d, env=aws_env)
    assert run.rc == 0, run.err
    assert tree(d) == expected(a=REPO_A)


def test_delete_guard_holds_in_manifest_mode(seaweed, bucket, tmp_path, aws_env):
    publish_repo(seaweed, bucket, "a", REPO_A, tmp_path)
    publish_repo(seaweed, bucket, "b", {f"d{i}.py": b"%d" % i for i in range(30)}, tmp_path)
    d = tmp_path / "d"
    assert pull(f"s3://{bucket}/dags", d, env=aws_env).rc == 0
    publish_repo(seaweed, bucket, "b", {}, tmp_path, allow_empty=True)
    run = pull(f"s3://{bucket}/dags", d, env=aws_env)
    assert run.rc == 1 and "exceed the default --max-delete" in run.err
    assert len(tree(d)) == 32
    run = pull(f"s3://{bucket}/dags", d, "--max-delete", "100%", env=aws_env)
    assert run.rc == 0, run.err
    assert tree(d) == expected(a=REPO_A)


def test_removed_manifest_turns_the_folder_plain_and_sighup_repairs_damage(seaweed, s3_client, bucket, tmp_path,
                                                                           aws_env):
    publish_repo(seaweed, bucket, "a", REPO_A, tmp_path)
    publish_repo(seaweed, bucket, "b", REPO_B, tmp_path)
    d = tmp_path / "d"
    with Daemon(f"s3://{bucket}/dags", d, aws_env, "--rescan-every", "1h") as daemon:
        wait_for(lambda: daemon.health() == (200, "GOOD"), what="healthy")
        assert tree(d) == expected(a=REPO_A, b=REPO_B)
        (d / "b/dag_1.py").unlink()
        passes = daemon.passes()
        wait_for(lambda: daemon.passes() >= passes + 2, what="two polls")
        assert not (d / "b/dag_1.py").exists()  # a no-op poll looks at no local file
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: (d / "b/dag_1.py").exists(), timeout=10, what="SIGHUP to restore a deleted file")

        s3_client.delete_object(Bucket=bucket, Key="dags/.objsync/manifests/a.json")
        put(s3_client, bucket, {"dags/a/extra.py": b"listed now"})
        wait_for(lambda: tree(d).get("a/extra.py") == b"listed now", timeout=10, what="a to be listed")
        assert tree(d) == expected(a=REPO_A | {"extra.py": b"listed now"}, b=REPO_B)
        assert daemon.stop() == 0


def test_pin_holds_a_repo_at_a_version_from_history(seaweed, s3_client, bucket, tmp_path, aws_env):
    s3_client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v1 = publish_repo(seaweed, bucket, "a", REPO_A, tmp_path)
    v2_files = {"dag_a.py": b"A = 2\n", "lib/helper.py": b"def h():\n    return 'a2'\n", "lib/new.py": b""}
    v2 = publish_repo(seaweed, bucket, "a", v2_files, tmp_path)
    publish_repo(seaweed, bucket, "b", REPO_B, tmp_path)
    d = tmp_path / "d"
    run = pull(f"s3://{bucket}/dags", d, "--pin", f"a={v1.id}", env=aws_env)
    assert run.rc == 0, run.err
    assert tree(d) == expected(a=REPO_A, b=REPO_B)
    assert pull(f"s3://{bucket}/dags", d, env=aws_env).rc == 0
    assert tree(d) == expected(a=v2_files, b=REPO_B)

    missing = "0123456789abcdef"
    run = pull(f"s3://{bucket}/dags", d, "--pin", f"a={missing}", env=aws_env)
    assert run.rc == 1
    (error,) = run.summary["errors"]
    assert error["key"] == f"dags/.objsync/history/a/{missing}.json"
    assert "repo 'a' refused" in error["error"] and f"version {missing} is not in its history" in error["error"]
    assert tree(d) == expected(a=v2_files, b=REPO_B)
    assert v2.id != v1.id

    run = objsync("pull", "--once", "--pin", "a=nope", f"s3://{bucket}/dags", str(d), env=aws_env)
    assert run.rc == 2 and "manifest id" in run.err


def test_pin_to_overwritten_objects_says_why(seaweed, bucket, tmp_path, aws_env):
    v1 = publish_repo(seaweed, bucket, "a", REPO_A, tmp_path)
    publish_repo(seaweed, bucket, "a", {"dag_a.py": b"A = 2\n"}, tmp_path)
    run = pull(f"s3://{bucket}/dags", tmp_path / "d", "--pin", f"a={v1.id}", env=aws_env)
    assert run.rc == 1
    errors = {e["key"]: e["error"] for e in run.summary["errors"]}
    assert set(errors) == {"dags/a/dag_a.py", "dags/a/lib/helper.py"}
    assert "(overwritten after the push)" in errors["dags/a/dag_a.py"]
    assert "(deleted after the push)" in errors["dags/a/lib/helper.py"]


def test_list_mode_counts_only_what_it_may_mirror(seaweed, bucket, tmp_path, aws_env):
    publish_repo(seaweed, bucket, "a", REPO_A, tmp_path)
    publish_repo(seaweed, bucket, "b", REPO_B, tmp_path)  # 4 keys of objsync's own: 2 manifests, 2 in history
    d = tmp_path / "d"
    run = pull(f"s3://{bucket}/dags", d, "--ignore-manifests", env=aws_env)
    assert run.rc == 0, run.err
    s = run.summary
    assert (s["mode"], s["listed"], s["fetched"], s["skipped"]) == ("list", 5, 5, 0)
    assert "unchanged 0," in run.err
    again = pull(f"s3://{bucket}/dags", d, "--ignore-manifests", env=aws_env).summary
    assert (again["listed"], again["fetched"], again["skipped"]) == (5, 0, 5)

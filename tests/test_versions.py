"""Versions kept apart on disk (the storage of the Airflow bundle), against a real SeaweedFS."""

from __future__ import annotations

import shutil
import threading

import pytest
from test_manifest_mode import REPO_A, proxy, publish_repo  # noqa: F401 - proxy is a fixture

from objsync.pull.versionstore import VersionStore, current_version
from objsync.pull.versiontree import VersionError
from objsync.s3.bucket import Bucket
from objsync.s3.config import Location, RemoteConfig

V2 = REPO_A | {"lib/helper.py": b"def h():\n    return 'a2'\n", "dag_new.py": b"N = 1\n"}


def store(endpoint: str, bucket: str, base) -> VersionStore:
    remote = RemoteConfig(endpoint_url=endpoint)
    return VersionStore(Bucket(remote, bucket), remote, Location(bucket, "dags"), "a", base, base / "versions")


def files(path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_each_version_gets_its_own_tree_and_a_new_one_downloads_only_what_changed(
        seaweed, bucket, tmp_path, aws_env, proxy):
    v1 = publish_repo(seaweed, bucket, "a", REPO_A, tmp_path)
    s = store(proxy.url, bucket, tmp_path / "b")
    assert s.refresh() == v1.id and current_version(tmp_path / "b") == v1.id
    assert files(s.path(v1.id)) == REPO_A
    proxy.seen.clear()
    assert s.refresh() == v1.id
    assert len(proxy.seen) == 1  # a quiet refresh is one conditional GET
    proxy.seen.clear()
    assert store(proxy.url, bucket, tmp_path / "b").refresh() == v1.id
    assert len(proxy.seen) == 1  # another process on the host shares the ETag: its first refresh is as cheap

    v2 = publish_repo(seaweed, bucket, "a", V2, tmp_path)
    proxy.seen.clear()
    assert s.refresh() == v2.id
    downloaded = sorted(path.split("/dags/a/", 1)[1] for _, path in proxy.seen if "/dags/a/" in path)
    assert downloaded == ["dag_new.py", "lib/helper.py"]
    assert files(s.path(v2.id)) == V2 and files(s.path(v1.id)) == REPO_A  # a finished tree is never changed
    assert (s.path(v2.id) / "dag_a.py").stat().st_ino == (s.path(v1.id) / "dag_a.py").stat().st_ino
    assert not [p for p in (tmp_path / "b" / "versions").iterdir() if p.name.startswith(".")]


def test_a_pinned_version_is_rebuilt_from_the_history(seaweed, s3_client, bucket, tmp_path, aws_env):
    # Versioning keeps v1's helper readable after v2 overwrote it; the manifest names its VersionId.
    s3_client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    v1 = publish_repo(seaweed, bucket, "a", REPO_A, tmp_path)
    assert all(f.version_id for f in v1.files)
    publish_repo(seaweed, bucket, "a", V2, tmp_path)
    s = store(seaweed.endpoint_url, bucket, tmp_path / "fresh-worker")
    assert files(s.ensure(v1.id)) == REPO_A
    assert current_version(tmp_path / "fresh-worker") is None  # pinning never moves the current version


def test_a_bad_manifest_or_a_missing_version_keeps_the_current_one(seaweed, s3_client, bucket, tmp_path, aws_env):
    v1 = publish_repo(seaweed, bucket, "a", REPO_A, tmp_path)
    s = store(seaweed.endpoint_url, bucket, tmp_path / "b")
    s.refresh()
    s3_client.put_object(Bucket=bucket, Key="dags/.objsync/manifests/a.json", Body=b"{not json")
    with pytest.raises(VersionError, match=f"repo 'a': .*refused: not a JSON document.*version {v1.id} stays"):
        s.refresh()
    assert current_version(tmp_path / "b") == v1.id and files(s.path(v1.id)) == REPO_A
    with pytest.raises(VersionError, match="0123456789abcdef of repo 'a' is not in its history"):
        s.ensure("0123456789abcdef")


def test_a_version_whose_objects_are_gone_names_them_and_leaves_no_tree(seaweed, s3_client, bucket, tmp_path, aws_env):
    v1 = publish_repo(seaweed, bucket, "a", REPO_A, tmp_path)
    s3_client.delete_object(Bucket=bucket, Key="dags/a/lib/helper.py")
    s = store(seaweed.endpoint_url, bucket, tmp_path / "b")
    with pytest.raises(VersionError, match=r"dags/a/lib/helper\.py: NoSuchKey"):
        s.ensure(v1.id)
    assert not s.path(v1.id).exists()
    assert not [p for p in (tmp_path / "b" / "versions").iterdir() if p.name.startswith(".")]


def test_two_builders_of_one_version_both_end_with_the_complete_tree(seaweed, bucket, tmp_path, aws_env):
    v1 = publish_repo(seaweed, bucket, "a", REPO_A, tmp_path)
    stores = [store(seaweed.endpoint_url, bucket, tmp_path / "b") for _ in range(2)]
    found: list = []
    threads = [threading.Thread(target=lambda s=s: found.append(files(s.ensure(v1.id)))) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert found == [REPO_A, REPO_A]


def test_without_versioning_an_overwritten_object_of_an_old_version_is_named(seaweed, bucket, tmp_path, aws_env):
    v1 = publish_repo(seaweed, bucket, "a", REPO_A, tmp_path)
    publish_repo(seaweed, bucket, "a", V2, tmp_path)
    s = store(seaweed.endpoint_url, bucket, tmp_path / "b")
    with pytest.raises(VersionError, match=r"dags/a/lib/helper\.py: PreconditionFailed.*overwritten after the push.*"
                                           r"bucket versioning"):
        s.ensure(v1.id)


def test_tidy_removes_what_dead_builders_left_and_copies_of_removed_versions(seaweed, bucket, tmp_path, aws_env):
    v1 = publish_repo(seaweed, bucket, "a", REPO_A, tmp_path)
    s = store(seaweed.endpoint_url, bucket, tmp_path / "b")
    s.refresh()
    v2 = publish_repo(seaweed, bucket, "a", V2, tmp_path)
    s.refresh()
    leftovers = [s.versions_dir / f".building-{v1.id}-1-0000", s.meta / "tmp" / "x.part"]
    leftovers[0].mkdir()
    leftovers[1].write_bytes(b"half")
    shutil.rmtree(s.path(v1.id))  # as Airflow's stale-version cleanup does
    s.tidy()
    assert not any(p.exists() for p in leftovers)
    assert sorted(p.name for p in (s.meta / "manifests").iterdir()) == [f"{v2.id}.json"]
    assert sorted(p.name for p in s.versions_dir.iterdir()) == [v2.id]


def test_an_id_that_is_not_a_manifest_id_is_named_with_the_repo(seaweed, bucket, tmp_path, aws_env):
    s = store(seaweed.endpoint_url, bucket, tmp_path / "b")
    with pytest.raises(VersionError, match=r"repo 'a' has no version '9fceb02d0ae5'"):
        s.ensure("9fceb02d0ae5")  # a git SHA, from runs made when the bundle was a GitDagBundle

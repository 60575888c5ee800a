"""Airflow 3 itself with the objsync DAG bundle, against SeaweedFS: each version recorded, each run given its own.

Airflow comes from the cached venv of tests/support/airflow.py. Run with `scripts/test --e2e`.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.airflow import airflow_env, airflow_python  # noqa: F401 - airflow_python is a fixture
from test_manifest_mode import CountingProxy, proxy  # noqa: F401 - proxy is a fixture

pytestmark = pytest.mark.e2e

DRIVER = Path(__file__).with_name("airflow_bundle.py")
COMMIT = "9fceb02d0ae598e95dc970b74767f19372d61af8"


PIPELINE = '''\
from datetime import datetime

from airflow.sdk import DAG, task

from lib import helper

helper.feature_{n}()  # only helper version {n} has it: a DAG of one version never runs with another's helper

with DAG(dag_id="team_pipeline", start_date=datetime(2024, 1, 1), schedule=None,
         tags=["dag-{n}", f"helper-{{helper.VERSION}}"]):
    @task
    def report():
        return helper.VERSION

    report()
'''
PADS = 20  # files that no version changes


def repo_files(n: int) -> dict[str, bytes]:
    """Version n of repo 'team': a DAG, the helper module it imports, and files that stay the same."""
    helper = f"VERSION = {n}\n\n\ndef feature_{n}():\n    return {n}\n".encode()
    pads = {f"data/{i:02d}.txt": b"unchanged %d\n" % i for i in range(PADS)}
    return {"dags/pipeline.py": PIPELINE.format(n=n).encode(), "lib/helper.py": helper, **pads}


class Airflow:
    """One Airflow home with one bundle, `team`, configured; runs Airflow's commands and workers' loads."""

    def __init__(self, python: Path, root: Path, kwargs: dict, env: dict[str, str],
                 classpath: str = "objsync.airflow.ObjsyncDagBundle") -> None:
        self.python, self.home, self.storage = python, root / "airflow", root / "bundles"
        bundles = [{"name": "team", "classpath": classpath, "kwargs": kwargs}]
        self.env = airflow_env(self.home, AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST=json.dumps(bundles),
                               AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH=str(self.storage)) | env

    def run(self, *args: str) -> subprocess.CompletedProcess:
        started = time.monotonic()
        done = subprocess.run([str(self.python.parent / "airflow"), *args], env=self.env, capture_output=True,
                              text=True, timeout=300)
        print(f"airflow {' '.join(args)}: exit {done.returncode} in {time.monotonic() - started:.1f} s")
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return done

    def load(self, *versions: str | None) -> dict | list[dict]:
        """What a worker gets for each version (None: the current one), all at once: the tree, parsed by DagBag."""
        procs = [subprocess.Popen([str(self.python), str(DRIVER), "load", "team", *([v] if v else [])], env=self.env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for v in versions or [None]]
        found = []
        for proc in procs:
            out, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, out[-3000:] + err[-3000:]
            found.append(_marked(out)[-1])
        return found if len(versions) > 1 else found[0]

    def cleanup(self, **settings: str) -> list[str]:
        """Airflow's stale-version cleanup with these [dag_processor] settings; the versions left on disk."""
        env = self.env | {f"AIRFLOW__DAG_PROCESSOR__{k.upper()}": v for k, v in settings.items()}
        done = subprocess.run([str(self.python), str(DRIVER), "cleanup", "team"], env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return _marked(done.stdout)[-1]["versions"]

    def query(self, sql: str) -> list[tuple]:
        with sqlite3.connect(self.home / "airflow.db") as db:
            return db.execute(sql).fetchall()

    def dag_versions(self) -> list[tuple]:
        return self.query("SELECT dag_id, version_number, bundle_name, bundle_version, version_data "
                          "FROM dag_version ORDER BY version_number")

    def task_bundle_versions(self) -> list[tuple]:
        """(run id, task id, the bundle version a worker is given) for each task instance."""
        return self.query("SELECT ti.run_id, ti.task_id, v.bundle_version FROM task_instance ti "
                          "JOIN dag_version v ON v.id = ti.dag_version_id ORDER BY ti.run_id")


def _marked(out: str) -> list[dict]:
    return [json.loads(line.split(" ", 1)[1]) for line in out.splitlines() if line.startswith("@bundle ")]


class Driver:
    """The bundle `team` as the DAG processor holds it: initialized once, then refreshed on request."""

    def __init__(self, airflow: Airflow) -> None:
        self.log = airflow.home / "driver.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen([str(airflow.python), str(DRIVER), "drive", "team"], env=airflow.env,
                                         text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
        self.first = self._next()

    def refresh(self) -> dict:
        self.proc.stdin.write("refresh\n")
        self.proc.stdin.flush()
        return self._next()

    def _next(self) -> dict:
        for line in self.proc.stdout:
            if line.startswith("@bundle "):
                return json.loads(line.split(" ", 1)[1])
        raise AssertionError(f"the bundle driver ended (exit {self.proc.wait(10)}): {self.log.read_text()[-3000:]}")

    def close(self) -> None:
        self.proc.stdin.close()
        assert self.proc.wait(60) == 0


def push(seaweed, bucket: str, files: dict[str, bytes], work: Path) -> str:
    """`objsync push dev` of `files` as repo 'team', run as GitHub Actions would; the manifest id."""
    src = work / "workflow"
    shutil.rmtree(src, ignore_errors=True)
    for rel, data in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OBJSYNC_", "GITHUB_"))} | seaweed.env() | {
        "OBJSYNC_ENV_DEV_URL": f"s3://{bucket}/dags", "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/team", "GITHUB_SHA": COMMIT}
    done = subprocess.run([sys.executable, "-m", "objsync", "push", "dev", "--source", str(src), "--json"], cwd=work,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout.splitlines()[-1])["manifest_id"]


def gets(proxy: CountingProxy, bucket: str) -> list[str]:
    """The keys this proxy saw read (GET), without the query."""
    return sorted(path.split("?")[0].removeprefix(f"/{bucket}/") for method, path in proxy.seen if method == "GET")


def test_airflow_records_each_version_and_a_worker_gets_the_one_of_its_run(
        airflow_python, seaweed, s3_client, bucket, proxy, tmp_path, capsys):
    s3_client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    kwargs = {"url": f"s3://{bucket}/dags", "repo": "team", "endpoint_url": proxy.url, "refresh_interval": 0}
    airflow = Airflow(airflow_python, tmp_path, kwargs, seaweed.env())
    airflow.run("db", "migrate")
    manifest = "dags/.objsync/manifests/team.json"

    # 1. v1, pushed as CI does, parsed by Airflow: the DAG version carries v1's manifest id and commit.
    #    A run created now records that DAG version, so its tasks get v1 whatever is pushed later.
    v1 = push(seaweed, bucket, repo_files(1), tmp_path)
    airflow.run("dags", "reserialize", "-B", "team")
    link = {"commit": COMMIT, "commit_url": f"https://github.com/acme/team/commit/{COMMIT}"}
    assert [row[:4] for row in airflow.dag_versions()] == [("team_pipeline", 1, "team", v1)]
    assert json.loads(airflow.dag_versions()[0][4]) == link
    assert len(gets(proxy, bucket)) == 1 + len(repo_files(1))
    airflow.run("dags", "trigger", "team_pipeline", "--run-id", "run_on_v1")

    # 5a. A quiet refresh of the DAG processor's bundle is one request: a conditional GET of the manifest.
    driver = Driver(airflow)
    try:
        assert driver.first["version"] == v1
        proxy.seen.clear()
        for _ in range(3):
            assert driver.refresh()["version"] == v1
        assert gets(proxy, bucket) == [manifest] * 3 and len(proxy.seen) == 3

        # 2. v2 changes the DAG and its helper together; building it downloads only those two files.
        v2 = push(seaweed, bucket, repo_files(2), tmp_path)
        proxy.seen.clear()
        started = time.monotonic()
        assert driver.refresh()["version"] == v2
        built = time.monotonic() - started
        assert gets(proxy, bucket) == sorted([manifest, "dags/team/dags/pipeline.py", "dags/team/lib/helper.py"])
        airflow.run("dag-processor", "--num-runs", "1", "-B", "team")  # Airflow's DAG processor, one loop
        assert [row[:4] for row in airflow.dag_versions()] == [("team_pipeline", 1, "team", v1),
                                                              ("team_pipeline", 2, "team", v2)]
        airflow.run("dags", "trigger", "team_pipeline", "--run-id", "run_on_v2")
        assert airflow.task_bundle_versions() == [("run_on_v1", "report", v1), ("run_on_v2", "report", v2)]
        worker_v1, worker_v2, current = airflow.load(v1, v2, None)
        assert worker_v1["dags"] == {"team_pipeline": ["dag-1", "helper-1"]} and worker_v1["path"].endswith(v1)
        assert worker_v2["dags"] == current["dags"] == {"team_pipeline": ["dag-2", "helper-2"]}
        assert current["version"] == v2 and current["data"] == link and not worker_v1["errors"]

        # 4. A bad manifest: the bundle keeps v2, and the error names the repo and the reason.
        s3_client.put_object(Bucket=bucket, Key=manifest, Body=b"{not json")
        kept = driver.refresh()
        assert kept["version"] == v2 and f"repo 'team': its manifest s3://{bucket}/{manifest} was refused: " \
                                           f"not a JSON document" in kept["error"], kept
        logged = airflow.run("dag-processor", "--num-runs", "1", "-B", "team")
        assert f"repo 'team': its manifest s3://{bucket}/{manifest} was refused" in logged.stdout + logged.stderr
        assert "Error refreshing bundle team" in logged.stdout + logged.stderr
        print(*[line[:400] for line in (logged.stdout + logged.stderr).splitlines() if "repo 'team'" in line], sep="\n")
        assert [row[3] for row in airflow.dag_versions()] == [v1, v2] and airflow.load()["version"] == v2
    finally:
        driver.close()

    # Airflow's own cleanup removes versions no task used lately; the DAG processor's current one is always
    # the newest it tracks. Asked for again, v1 is rebuilt from the history: only what differs from v2.
    assert airflow.cleanup(stale_bundle_cleanup_min_versions="1", stale_bundle_cleanup_age_threshold="0") == [v2]
    proxy.seen.clear()
    assert airflow.load(v1)["dags"] == {"team_pipeline": ["dag-1", "helper-1"]}
    assert gets(proxy, bucket) == sorted([f"dags/.objsync/history/team/{v1}.json", "dags/team/dags/pipeline.py",
                                          "dags/team/lib/helper.py"])

    # 3. The bundle storage is gone (a fresh worker pod): v1 is rebuilt from the history, by VersionId.
    #    Two workers ask at once; the bundle's lock lets one build while the other waits, then finds it.
    shutil.rmtree(airflow.storage)
    proxy.seen.clear()
    for rebuilt in airflow.load(v1, v1):
        assert rebuilt["dags"] == {"team_pipeline": ["dag-1", "helper-1"]} and rebuilt["version"] == v1
    assert gets(proxy, bucket) == sorted([f"dags/.objsync/history/team/{v1}.json"]
                                         + [f"dags/team/{rel}" for rel in repo_files(1)])
    assert not (airflow.storage / "team" / "objsync" / "current").exists()  # a pinned bundle never moves
    with capsys.disabled():
        print(f"\nbundle: quiet refresh 1 request; v2 built in {built:.2f} s from 2 downloads "
              f"and {PADS} links; v1 rebuilt from history with {len(repo_files(1))} downloads")


def connection_env(seaweed, endpoint: str) -> dict[str, str]:
    """An Airflow AWS connection `objsync_s3` to the server, and no other way to reach it: no AWS_* or AWS files."""
    conn = {"conn_type": "aws", "login": seaweed.access_key, "password": seaweed.secret_key,
            "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"}}
    return {"AIRFLOW_CONN_OBJSYNC_S3": json.dumps(conn), "AWS_CONFIG_FILE": "/nonexistent",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_EC2_METADATA_DISABLED": "true"}


def test_credentials_and_endpoint_come_from_an_airflow_connection(airflow_python, seaweed, bucket, tmp_path):
    v1 = push(seaweed, bucket, repo_files(1), tmp_path)
    airflow = Airflow(airflow_python, tmp_path, {"url": f"s3://{bucket}/dags", "repo": "team",
                                                 "aws_conn_id": "objsync_s3"}, connection_env(seaweed, seaweed.endpoint_url))
    assert airflow.load()["dags"] == {"team_pipeline": ["dag-1", "helper-1"]}
    assert airflow.load(v1)["version"] == v1


def test_the_amazon_providers_s3_bundle_side_by_side(airflow_python, seaweed, bucket, proxy, tmp_path, capsys):
    """The numbers of the README's comparison, for Airflow's own S3DagBundle on the same repo and server."""
    push(seaweed, bucket, repo_files(1), tmp_path)
    airflow = Airflow(airflow_python, tmp_path, {"bucket_name": bucket, "prefix": "dags/team", "aws_conn_id": "objsync_s3",
                                                 "refresh_interval": 0}, connection_env(seaweed, proxy.url),
                      classpath="airflow.providers.amazon.aws.bundles.s3.S3DagBundle")
    driver = Driver(airflow)
    try:
        first = driver.first
        assert not first["versioned"] and first["version"] is None
        proxy.seen.clear()
        driver.refresh()
        quiet = list(proxy.seen)
        # S3DagBundle downloads when the size differs or LastModified (whole seconds) is newer than the local
        # file's mtime: a same-size file rewritten within the second of its last download is missed.
        time.sleep(1.5)
        push(seaweed, bucket, repo_files(2), tmp_path)
        proxy.seen.clear()
        second = driver.refresh()
        new_version = list(proxy.seen)
    finally:
        driver.close()
    assert second["version"] is None and second["path"] == first["path"]  # one folder, rewritten in place
    listing = f"/{bucket}?prefix=dags%2Fteam%2F"
    assert [(m, p.startswith(listing)) for m, p in quiet] == [("GET", True)]  # one LIST per 1,000 objects
    fetched = sorted({p for m, p in new_version if not p.startswith(listing)})
    assert fetched == [f"/{bucket}/dags/team/dags/pipeline.py", f"/{bucket}/dags/team/lib/helper.py"]
    with capsys.disabled():
        print(f"\nS3DagBundle: quiet refresh {len(quiet)} request (LIST of {len(repo_files(1))} objects); "
              f"new version {len(new_version)} requests: {sorted(m for m, _ in new_version)}")

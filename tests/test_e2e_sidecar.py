"""Airflow 3's own DagBag reads a folder that `objsync pull` keeps in sync, while pushes replace a DAG and its helper.

Airflow comes from the cached venv of tests/support/airflow.py. Run with `scripts/test --e2e`.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from support.airflow import airflow_env, airflow_python  # noqa: F401 - airflow_python is a fixture
from test_daemon import Daemon, wait_for
from test_manifest_mode import publish_repo

pytestmark = pytest.mark.e2e

LOADER = Path(__file__).with_name("airflow_loader.py")

VERSIONS = 8
PADS = 480  # files between dag.py and lib/helper.py in the listing, so an in-place pass takes a while

DAG = '''\
from datetime import datetime

from airflow.sdk import DAG

from team.lib import helper

DAG_VERSION = {n}
helper.feature_{n}()  # only helper version {n} has it

with DAG(dag_id="team_pipeline", start_date=datetime(2024, 1, 1), schedule=None,
         tags=[f"dag-{{DAG_VERSION}}", f"helper-{{helper.VERSION}}"]):
    pass
'''


def version(n: int) -> dict[str, bytes]:
    """Version n of repo 'team': a DAG that needs helper version n, the helper, and padding."""
    pads = {f"data/{i:03d}.bin": bytes([n]) * 40_000 for i in range(PADS)}
    helper = f"VERSION = {n}\n\n\ndef feature_{n}():\n    return {n}\n".encode()
    return {"dag.py": DAG.format(n=n).encode(), "lib/helper.py": helper, **pads}


def loads(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


@pytest.mark.parametrize("mode", [
    "atomic",
    pytest.param("in-place", marks=pytest.mark.xfail(
        strict=True, reason="in place, Airflow imports a new DAG next to an old helper; the test must see it")),
])
def test_airflow_never_sees_a_half_updated_repo(mode, airflow_python, seaweed, bucket, tmp_path, aws_env):
    publish_repo(seaweed, bucket, "team", version(0), tmp_path)
    dags = tmp_path / "dags"
    out, stop = tmp_path / "loads.jsonl", tmp_path / "stop"
    flags = ["--atomic"] if mode == "atomic" else []
    env = airflow_env(tmp_path / "airflow-home", AIRFLOW__CORE__DAGS_FOLDER=str(dags),
                      AIRFLOW__LOGGING__LOGGING_LEVEL="ERROR")
    with Daemon(f"s3://{bucket}/dags", dags, aws_env, *flags, "--rescan-every", "1h",
                "--exclude", "**/__pycache__/**", interval="100ms") as daemon:
        wait_for(lambda: daemon.health() == (200, "GOOD"), what="healthy")
        loader = subprocess.Popen([str(airflow_python), str(LOADER), str(dags), str(out), str(stop)], env=env,
                                  stderr=open(tmp_path / "loader.err", "w"))
        try:
            wait_for(lambda: len(loads(out)) >= 2, timeout=120, what="Airflow's first loads")
            for n in range(1, VERSIONS + 1):
                publish_repo(seaweed, bucket, "team", version(n), tmp_path)
                wait_for(lambda: (dags / "team/lib/helper.py").read_bytes().startswith(b"VERSION = %d\n" % n),
                         timeout=60, what=f"version {n}")
                seen = len(loads(out))
                wait_for(lambda: len(loads(out)) >= seen + 2, timeout=60, what="two more loads")
        finally:
            stop.touch()
            loader.wait(60)
        assert daemon.stop() == 0

    results = loads(out)
    crashes = [r["crash"] for r in results if "crash" in r]
    errors = [r["errors"] for r in results if r.get("errors")]
    tags = [tuple(r["dags"].get("team_pipeline", ())) for r in results if "dags" in r]
    mixed = [t for t in tags if len({x.split("-")[1] for x in t}) > 1]
    versions = {t[0] for t in tags if t}
    print(f"{mode}: {len(results)} loads, {len(versions)} versions seen, {len(errors)} with import errors, "
          f"{len(mixed)} mixed, {len(crashes)} crashed")
    assert len(results) >= 2 * VERSIONS and len(versions) >= VERSIONS // 2
    assert crashes == [] and errors == [] and mixed == []
    assert all(r["dags"].keys() == {"team_pipeline"} for r in results)  # every load found the DAG, once

    if mode == "atomic":
        # Without objsync's .airflowignore, Airflow's walk reaches each tree twice: through its symlink
        # and inside the store. The file is what keeps the store out of the walk.
        (dags / ".objsync/.airflowignore").unlink()
        once = subprocess.run([str(airflow_python), str(LOADER), str(dags), "--once"], env=env,
                              capture_output=True, text=True, timeout=300)
        assert "Detected recursive loop" in json.loads(once.stdout.splitlines()[-1]).get("crash", ""), once

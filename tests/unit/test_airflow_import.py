"""objsync.airflow without Airflow: one ImportError that says what to install, and no chained traceback."""

import importlib.util
import subprocess
import sys

import pytest


@pytest.mark.skipif(importlib.util.find_spec("airflow") is not None, reason="Airflow is installed here")
def test_importing_the_bundle_without_airflow_says_what_to_do():
    done = subprocess.run([sys.executable, "-c", "import objsync.airflow"], capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith(
        "ImportError: objsync.airflow needs Apache Airflow 3 (airflow.dag_processing.bundles), which is not installed")
    assert "('objsync[airflow]') into Airflow's own environment" in done.stderr
    assert "ModuleNotFoundError" not in done.stderr  # one message, not two tracebacks

"""Airflow itself for the end-to-end tests: a venv with apache-airflow, cached between runs, and its environment.

apache-airflow (with the Amazon provider) is installed once into its own venv under
~/.cache/objsync-e2e/ (or $OBJSYNC_E2E_CACHE), never into the project's; Airflow's processes
import objsync from this checkout (PYTHONPATH).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

AIRFLOW = "3.3.2"
REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("OBJSYNC_E2E_CACHE") or Path.home() / ".cache" / "objsync-e2e")


@pytest.fixture(scope="session")
def airflow_python() -> Path:
    """The Python of a venv with apache-airflow, created on first use and kept for later runs.

    The venv is named after Airflow's version; it is brought up to date when objsync's dependencies change.
    """
    venv = CACHE / f"airflow-{AIRFLOW}-py{sys.version_info.major}{sys.version_info.minor}"
    python = venv / "bin" / "python"
    ready = venv / ".objsync-e2e-ready"
    spec = json.dumps({"airflow": AIRFLOW, "pyproject": _dependencies()}, sort_keys=True)
    if not (ready.exists() and ready.read_text() == spec):
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        f"apache-airflow=={AIRFLOW}", f"{REPO}[airflow]"], check=True, timeout=3600)
        subprocess.run([str(python), "-c", "import objsync.airflow"], check=True,
                       env=airflow_env(venv / "home"))
        ready.write_text(spec)
    return python


def _dependencies() -> list:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return [project["dependencies"], project["optional-dependencies"]["airflow"]]


def airflow_env(home: Path, **settings: str) -> dict[str, str]:
    """An environment for Airflow's processes: no AWS_* or AIRFLOW* of ours, and objsync from this checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AWS_"))}
    return env | {"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                  "AIRFLOW__CORE__UNIT_TEST_MODE": "False", "PYTHONPATH": str(REPO),
                  # Airflow skips writing a DAG parsed again within 30 s; these tests push faster than that.
                  "AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL": "0",
                  "PYTHONDONTWRITEBYTECODE": ""} | settings

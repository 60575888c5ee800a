"""Every objsync command line in the Kubernetes examples parses, and each one runs with --atomic or says why not.

Every Airflow 3 bundle configuration in them names ObjsyncDagBundle with arguments it takes.
"""

import ast
import json
import shlex
from pathlib import Path

import pytest
import yaml

from objsync.cli import parse_args
from objsync.layout import check_repo_name
from objsync.s3.config import Location

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "kubernetes"


def containers(node):
    """Every mapping that looks like a container spec, anywhere in a YAML document."""
    if isinstance(node, dict):
        if "image" in node and ("args" in node or "command" in node):
            yield node
        for value in node.values():
            yield from containers(value)
    elif isinstance(node, list):
        for item in node:
            yield from containers(item)


def objsync_argv(container, env):
    image = container["image"]
    if not image.startswith("objsync"):
        return None
    command = list(container.get("command", [])) + list(container.get("args", []))
    if command[:2] == ["/bin/sh", "-c"]:
        script = command[2]
        for name, value in env.items():
            script = script.replace("${%s}" % name, value)
        command = shlex.split(script)
    if command and command[0] in ("objsync", "objinsync"):
        command = command[1:]
    return command


def commands_in(path: Path) -> list[list[str]]:
    found = []
    for doc in yaml.safe_load_all(path.read_text()):
        for c in containers(doc):
            env = {e["name"]: e.get("value", "") for e in c.get("env", [])}
            argv = objsync_argv(c, env)
            if argv is not None:
                found.append(pytest.param(argv, id=f"{path.name}:{c['name']}"))
    return found


EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))
COMMANDS = [command for path in EXAMPLE_FILES for command in commands_in(path)]


def test_examples_exist():
    assert len(COMMANDS) >= 6


@pytest.mark.parametrize("argv", COMMANDS)
def test_example_command_parses(argv):
    args, _ = parse_args(argv, {})
    assert args.command == "pull"
    assert args.remote.startswith("s3://") and args.local.startswith("/")


@pytest.mark.parametrize("argv", COMMANDS)
def test_a_sidecar_publishes_atomically(argv):
    # In place, Airflow can import a new DAG next to an old helper while a pass runs.
    args, _ = parse_args(argv, {})
    assert args.atomic or args.once


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_each_example_without_atomic_says_why(path):
    plain = [c for c in commands_in(path) if not parse_args(c.values[0], {})[0].atomic]
    assert path.read_text().count("# No --atomic: ") == len(plain)


def bundle_configs():
    """Every `dag_bundle_config_list` in the examples, with the file it is in."""
    for path in EXAMPLE_FILES:
        for doc in yaml.safe_load_all(path.read_text()):
            listing = ((doc or {}).get("config") or {}).get("dag_processor", {}).get("dag_bundle_config_list")
            if listing:
                yield path.name, json.loads(listing)


def bundle_kwargs() -> set[str]:
    """The keyword arguments ObjsyncDagBundle takes (read from its source: Airflow is not installed here),
    and Airflow's own that it passes through."""
    tree = ast.parse((Path(__file__).resolve().parents[2] / "objsync" / "airflow" / "bundle.py").read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "ObjsyncDagBundle")
    init = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    return {a.arg for a in init.args.kwonlyargs} | {"refresh_interval", "version", "view_url_template"}


def test_the_airflow_3_example_configures_objsync_bundles_that_construct():
    found = list(bundle_configs())
    assert [name for name, _ in found] == ["helm-values-airflow3.yaml"]
    allowed = bundle_kwargs()
    for _, bundles in found:
        assert len({b["name"] for b in bundles}) == len(bundles) >= 1
        for b in bundles:
            assert b["classpath"] == "objsync.airflow.ObjsyncDagBundle"
            assert set(b["kwargs"]) <= allowed, set(b["kwargs"]) - allowed
            assert Location.parse(b["kwargs"]["url"]).bucket and check_repo_name(b["kwargs"]["repo"])

"""Every objsync command line in the Kubernetes examples parses with the real argument parser."""

import shlex
from pathlib import Path

import pytest
import yaml

from objsync.cli import parse_args

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


def all_commands():
    found = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            for c in containers(doc):
                env = {e["name"]: e.get("value", "") for e in c.get("env", [])}
                argv = objsync_argv(c, env)
                if argv is not None:
                    found.append(pytest.param(argv, id=f"{path.name}:{c['name']}"))
    return found


COMMANDS = all_commands()


def test_examples_exist():
    assert len(COMMANDS) >= 6


@pytest.mark.parametrize("argv", COMMANDS)
def test_example_command_parses(argv):
    args, _ = parse_args(argv, {})
    assert args.command == "pull"
    assert args.remote.startswith("s3://") and args.local.startswith("/")

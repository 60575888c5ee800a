"""The command line: OBJSYNC_<FLAG> variables per command, readable flag errors, one usage form per command."""

import re
import shlex
from pathlib import Path

import pytest

from objsync import cli
from objsync.cli import config_from_args, daemon_config_from_args, parse_args

ROOT = Path(__file__).resolve().parents[2]
PULL = ["pull", "s3://b/p", "/dags"]


@pytest.fixture
def run(monkeypatch, capsys):
    """Run `main(argv)` with an environment; returns (exit status, stdout, stderr). Nothing is pulled."""
    monkeypatch.setattr(cli.logsetup, "setup", lambda level: None)
    monkeypatch.setattr(cli, "pull_command", lambda args, env, parser: 0)  # parsing is all these tests need

    def go(argv, env=None, prog="objsync"):
        for name in [n for n in cli.os.environ if n.startswith("OBJSYNC_")]:
            monkeypatch.delenv(name)
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        try:
            rc = cli.main(argv, prog=prog)
        except SystemExit as exc:
            rc = exc.code
        out = capsys.readouterr()
        return rc, out.out, out.err

    return go


def parse(argv, env):
    return parse_args(argv, env)[0]


@pytest.mark.parametrize("argv", [["--help"], ["pull", "--help"], ["push", "--help"]])
def test_help_works_whatever_a_pull_variable_holds(run, argv):
    rc, out, err = run(argv, {"OBJSYNC_INTERVAL": "abc", "OBJSYNC_WORKERS": "many"})
    assert rc == 0 and out.startswith("usage:") and err == ""


def test_a_pull_variable_does_not_reach_another_command():
    args = parse(["push", "dev"], {"OBJSYNC_INTERVAL": "abc", "OBJSYNC_THREADS": "99", "OBJSYNC_DRY_RUN": "yes"})
    assert (args.env, args.threads, args.dry_run) == ("dev", 16, False)


def test_a_bad_pull_variable_fails_pull_and_names_the_variable(run):
    rc, _, err = run(PULL, {"OBJSYNC_INTERVAL": "abc"})
    assert rc == 2 and err.startswith("usage: objsync pull")
    assert "objsync pull: error: environment variable OBJSYNC_INTERVAL='abc': 'abc' is not a duration" in err


@pytest.mark.parametrize("text", ["1", "true", "True", "YES", "on", "y", " t "])
def test_boolean_variables_accept_the_usual_true_spellings(text):
    assert parse(PULL, {"OBJSYNC_SCRATCH": text}).scratch is True


@pytest.mark.parametrize("text", ["0", "false", "FALSE", "no", "Off", "n", ""])
def test_boolean_variables_accept_the_usual_false_spellings(text):
    assert parse(PULL, {"OBJSYNC_SCRATCH": text}).scratch is False


def test_a_bad_boolean_variable_says_what_it_takes(run):
    rc, _, err = run(PULL, {"OBJSYNC_ONCE": "maybe"})
    assert rc == 2 and "OBJSYNC_ONCE='maybe'" in err and "use true or false" in err


@pytest.mark.parametrize("text, mode", [("false", "none"), ("true", "batch"), ("no", "none"), ("1", "batch"),
                                        ("file", "file"), ("None", "none"), ("batch", "batch")])
def test_the_fsync_variable_takes_a_mode_or_a_boolean(text, mode):
    args = parse(PULL, {"OBJSYNC_FSYNC": text})
    assert args.fsync == mode and config_from_args(args, {}).fsync.value == mode


@pytest.mark.parametrize("text", ["", "sometimes"])
def test_a_bad_fsync_variable_lists_the_choices(run, text):
    rc, _, err = run(PULL, {"OBJSYNC_FSYNC": text})
    assert rc == 2 and "OBJSYNC_FSYNC" in err and "batch, file, none, or true (batch) or false (none)" in err


def test_one_parse_leaves_nothing_for_the_next():
    assert parse(PULL, {"OBJSYNC_SCRATCH": "1", "OBJSYNC_EXCLUDE": "x/**"}).scratch is True
    assert (parse(PULL, {}).scratch, parse(PULL, {}).exclude) == (False, [])


def test_flags_win_over_variables():
    env = {"OBJSYNC_FSYNC": "false", "OBJSYNC_INTERVAL": "1m", "OBJSYNC_STATUS_ADDR": ":9000"}
    args = parse(["pull", "--fsync", "file", "-i", "2s", "s3://b", "d"], env)
    assert (args.fsync, args.interval, args.status_addr) == ("file", 2.0, ":9000")
    assert parse(["pull", "--no-fsync", "s3://b", "d"], {"OBJSYNC_FSYNC": "true"}).fsync == "none"


def readme_env_examples() -> list[tuple[str, str]]:
    """Every `OBJSYNC_<FLAG>=value` the README shows in code."""
    text = (ROOT / "README.md").read_text()
    found = re.findall(r"`(OBJSYNC_[A-Z_]+)=([^`]*)`", text)
    return [(name, shlex.split(value)[0] if value else "") for name, value in found]


def test_the_readme_shows_environment_examples():
    assert {name for name, _ in readme_env_examples()} >= {"OBJSYNC_INTERVAL", "OBJSYNC_FSYNC"}


@pytest.mark.parametrize("name, value", readme_env_examples())
def test_every_environment_example_in_the_readme_works(run, name, value):
    rc, _, err = run(["pull", "--once", "s3://b/p", "/dags"], {name: value})
    assert rc == 0, err
    args = parse(["pull", "s3://b/p", "/dags"], {name: value})
    assert getattr(args, name.removeprefix("OBJSYNC_").lower()) not in (None, [])


@pytest.mark.parametrize("flag, value, said", [
    ("--workers", "abc", "argument --workers: 'abc' is not a whole number; use 0 or more"),
    ("--threads", "-2", "argument --threads: '-2' is below 0; use 0 or more"),
    ("--max-failures", "often", "'often' is not a whole number; use a count such as 3, or a negative number"),
    ("--max-delete", "200%", "argument --max-delete: '200%' is neither a count of 0 or more (e.g. 100) "
                             "nor a percentage from 0% to 100% (e.g. 50%)"),
    ("--max-delete", "-1", "nor a percentage from 0% to 100%"),
])
def test_a_bad_flag_value_says_what_is_allowed(run, flag, value, said):
    rc, _, err = run(["pull", flag, value, "s3://b/p", "/dags"])
    assert rc == 2 and said in err and "invalid literal" not in err


@pytest.mark.parametrize("argv", [
    ["pull", "http://x/y", "/d"],  # a bad URI, found when the config is built
    ["pull", "-s", "bogus", "s3://b", "/d"],  # a bad status address, likewise
    ["pull", "--workers", "abc", "s3://b", "/d"],  # a bad flag value, found by argparse
])
def test_every_pull_usage_error_has_the_same_form(monkeypatch, capsys, argv):
    monkeypatch.setattr(cli.logsetup, "setup", lambda level: None)
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith("usage: objsync pull ") and "\nobjsync pull: error: " in err


def test_an_unknown_push_environment_has_the_push_usage(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli.logsetup, "setup", lambda level: None)
    with pytest.raises(SystemExit) as exc:
        cli.main(["push", "nowhere"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith("usage: objsync push ") and "\nobjsync push: error: " in err


@pytest.mark.parametrize("argv, said", [
    (["push", "dev", "--max-delete", "200%"], "argument --max-delete: '200%' is neither a count of 0 or more"),
    (["push", "dev", "--threads", "abc"], "argument --threads: 'abc' must be a whole number, 1 or more"),
    (["promote", "dev", "prod", "--max-delete", "-1"], "nor a percentage from 0% to 100%"),
    (["promote", "dev", "nowhere"], "unknown environment 'dev'"),
])
def test_publish_errors_use_their_own_command_usage_and_say_what_is_allowed(monkeypatch, capsys, tmp_path, argv,
                                                                            said):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli.logsetup, "setup", lambda level: None)
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    err = capsys.readouterr().err
    command = argv[0]
    assert exc.value.code == 2 and err.startswith(f"usage: objsync {command} ")
    assert f"\nobjsync {command}: error: " in err and said in err


def test_the_objinsync_alias_names_itself_in_errors(run):
    rc, _, err = run(["pull", "--workers", "x", "s3://b", "/d"], prog="objinsync")
    assert rc == 2 and "objinsync pull: error:" in err


def test_the_daemon_config_comes_from_flags_and_environment():
    env = {"SENTRY_DSN": "https://k@sentry.invalid/1", "PATH": "/bin"}
    args = parse(["pull", "-i", "2s", "--max-failures", "-1", "--exec-on-change", "reload", "--touch-file", "/t",
                  "s3://b", "/d"], {})
    d = daemon_config_from_args(args, env)
    assert (d.interval, d.max_failures, d.status_addr, d.sentry_dsn) == (2.0, -1, ":8087", env["SENTRY_DSN"])
    assert (d.hooks.exec_on_change, d.hooks.touch_file, dict(d.hooks.environ)) == ("reload", "/t", env)
    assert daemon_config_from_args(parse(["pull", "-s", "off", "s3://b", "/d"], {}), {}).status_addr is None
    # With --once there is no status server, so its address is not checked (as before).
    assert daemon_config_from_args(parse(["pull", "--once", "-s", "bogus", "s3://b", "/d"], {}), {}).sentry_dsn is None


def test_the_cli_uses_no_private_argparse_api():
    for name in ("cli.py", "envflags.py"):
        source = (ROOT / "objsync" / name).read_text()
        assert not re.search(r"argparse\._|\._actions|_SubParsersAction|_name_parser_map", source), name


def test_pins_parse_into_sorted_pairs():
    args = parse(["pull", "--pin", "b = fedcba9876543210,a=0123456789abcdef", "--pin", "a=0123456789abcdef",
                  "s3://b", "/d"], {})
    assert config_from_args(args, {}).pins == (("a", "0123456789abcdef"), ("b", "fedcba9876543210"))


@pytest.mark.parametrize("pin, said", [("a", "use REPO=MANIFEST_ID"), ("../x=0123456789abcdef", "repo name"),
                                       ("a=nope", "manifest id"),
                                       ("a=0123456789abcdef,a=fedcba9876543210", "pinned twice")])
def test_a_bad_pin_is_a_usage_error(monkeypatch, capsys, pin, said):
    monkeypatch.setattr(cli.logsetup, "setup", lambda level: None)
    with pytest.raises(SystemExit) as exc:
        cli.main(["pull", "--once", "--pin", pin, "s3://b", "/d"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "objsync pull: error: " in err and said in err

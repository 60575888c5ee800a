import logging
import os
import time

import pytest

from objsync.daemon import hooks as daemon
from objsync.daemon.hooks import HOOK_TAIL_BYTES, HOOK_TAIL_LINES, Hooks, run_hooks
from objsync.model import PassReport


ENVIRON = {"PATH": os.environ["PATH"]}


def failed_hook_log(caplog, tmp_path, command: str, environ=ENVIRON) -> str:
    with caplog.at_level(logging.ERROR, logger="objsync"):
        run_hooks(Hooks(exec_on_change=command, environ=environ), PassReport(fetched=1), tmp_path)
    [record] = [r for r in caplog.records if "exec-on-change" in r.getMessage()]
    return record.getMessage()


def test_a_failed_hook_logs_a_few_last_lines_and_counts_the_rest(caplog, tmp_path):
    msg = failed_hook_log(caplog, tmp_path, 'echo "token=$HOOK_SECRET"; seq 1000 1019; exit 3',
                          ENVIRON | {"HOOK_SECRET": "hunter2"})
    assert "hunter2" not in msg and "HOOK_SECRET" not in msg
    kept = "\n".join(str(n) for n in range(1020 - HOOK_TAIL_LINES, 1020))
    left_out = len("token=hunter2\n") + 20 * 5 - len(kept)
    assert msg == f"--exec-on-change exited with 3; end of its stdout ({left_out} bytes of output not logged): {kept}"


def test_a_long_last_line_is_cut_to_the_byte_limit(caplog, tmp_path):
    msg = failed_hook_log(caplog, tmp_path, f"printf 'secret\\n%0{3 * HOOK_TAIL_BYTES}d' 7 >&2; exit 1")
    assert msg == (f"--exec-on-change exited with 1; end of its stderr ({len('secret') + 1 + 2 * HOOK_TAIL_BYTES} "
                   f"bytes of output not logged): {'0' * (HOOK_TAIL_BYTES - 1)}7")


def test_stderr_is_shown_in_place_of_stdout(caplog, tmp_path):
    msg = failed_hook_log(caplog, tmp_path, "echo token=hunter2; echo reload failed >&2; exit 2")
    assert msg == ("--exec-on-change exited with 2; end of its stderr "
                   f"({len('token=hunter2') + 2} bytes of output not logged): reload failed")


def test_a_child_left_running_does_not_hold_the_hook_open(caplog, tmp_path, monkeypatch):
    monkeypatch.setattr(daemon, "HOOK_TIMEOUT", 5.0)
    started = time.monotonic()
    msg = failed_hook_log(caplog, tmp_path, "sleep 5 & exit 1")
    assert time.monotonic() - started < 2 and "exited with 1" in msg


@pytest.mark.parametrize("command", ["true", "echo fine"])
def test_a_succeeding_hook_logs_nothing(caplog, tmp_path, command):
    with caplog.at_level(logging.ERROR, logger="objsync"):
        run_hooks(Hooks(exec_on_change=command, environ=ENVIRON), PassReport(fetched=1), tmp_path)
    assert not caplog.records


def test_the_hook_runs_in_the_environment_it_was_given_plus_the_counts(tmp_path, monkeypatch):
    monkeypatch.setenv("NOT_PASSED_ON", "x")  # objsync's own environment reaches a hook only through the CLI
    out = tmp_path / "env"
    hooks = Hooks(exec_on_change=f"env > {out}", environ=ENVIRON | {"GIVEN": "yes"})
    run_hooks(hooks, PassReport(fetched=2, deleted=1), tmp_path / "d")
    seen = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
    assert seen["GIVEN"] == "yes" and "NOT_PASSED_ON" not in seen
    assert (seen["OBJSYNC_FETCHED"], seen["OBJSYNC_DELETED"], seen["OBJSYNC_DEST"]) == ("2", "1", str(tmp_path / "d"))


def test_the_environment_stays_out_of_the_repr():
    assert "hunter2" not in repr(Hooks(exec_on_change="true", environ={"AWS_SECRET_ACCESS_KEY": "hunter2"}))

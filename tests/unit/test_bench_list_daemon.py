"""The LIST-mode daemon phase: objinsync's passes from its log, the report rows, and memory per object."""

import json
from pathlib import Path

import pytest

from objsync.bench import listpoll, peers, scaling
from objsync.bench.phases import BenchPlan, BenchResult, DaemonRecord, Work
from objsync.bench.polls import PollStats, go_duration, log_passes, objinsync_passes
from objsync.bench.presets import PRESETS
from objsync.bench.verify import Check

OK = Check(ok=True, mode="full", hashed=1)
MIB = 1 << 20


def line(msg: str) -> str:
    return json.dumps({"level": "info", "ts": 1.0, "caller": "objinsync/main.go:138", "msg": msg})


def test_go_durations_as_go_prints_them():
    assert go_duration("82.063473ms") == pytest.approx(0.082063473)
    assert go_duration("1m2.5s") == pytest.approx(62.5)
    assert go_duration("950µs") == pytest.approx(0.00095) and go_duration("3ns") == pytest.approx(3e-9)
    assert go_duration("2h0m0s") == 7200.0
    assert go_duration("soon") is None and go_duration("12") is None and go_duration("1s later") is None


def test_objinsync_passes_are_its_pull_finished_lines(tmp_path):
    log = [line("Pull started."), line("Listing objects"), line("Pull finished in 82.063473ms seconds."),
           "not json", line("Pull finished in 1.5s seconds."), json.dumps(["a list"])]
    assert objinsync_passes(log) == (2.0, 0.0, pytest.approx(1.582063473))
    path = tmp_path / "objinsync.err"
    read = log_passes(path)
    assert read() is None  # not started yet
    path.write_text("\n".join(log[:3]) + "\n")
    assert read() == (1.0, 0.0, pytest.approx(0.082063473))


def test_objinsync_runs_as_a_daemon_with_its_own_flags():
    tool = peers.Tool("objinsync", "objinsync", ("/bin/objinsync",))
    argv = peers.daemon_command(tool, "s3://b/p/", "http://127.0.0.1:9", Path("/d"), "2000ms", "127.0.0.1:8")
    assert argv == ["/bin/objinsync", "pull", "--interval", "2000ms", "--status-addr", "127.0.0.1:8",
                    "--s3-endpoint", "http://127.0.0.1:9", "--disable-ssl", "s3://b/p/", "/d"]
    with pytest.raises(ValueError):
        peers.daemon_command(peers.Tool("s5cmd", "s5cmd", ("s5cmd",)), "s3://b/", None, Path("/d"), "1s", "h:1")


def polled(tool, cpu, r=0, rss=40, status="ok", check=OK, phase="list-daemon"):
    stats = PollStats(status, "" if status == "ok" else "it exited", polls=20, cpu_per_poll=cpu, pass_seconds=0.5,
                      requests_per_poll=10.0, peak_rss=rss * MIB, rss_last=rss * MIB)
    return DaemonRecord(tool, stats, check if status == "ok" else None, 0.0, r, phase)


def result(daemons, tools=("objsync", "objinsync")):
    work = {ph: Work() for ph in ("cold", "noop", "incremental", "daemon", "list-daemon")}
    return BenchResult(BenchPlan(PRESETS["tiny"], daemon_interval=2.0), tools, work, (), tuple(daemons))


def test_list_daemon_rows_use_medians_and_leave_out_bad_repeats():
    bad = Check(ok=False, mode="full", hashed=1, problems=("missing: a.py",))
    res = result([polled("objsync", 0.08), polled("objsync", 0.10, r=1), polled("objsync", 0.5, r=2, check=bad),
                  polled("objinsync", 0.20), polled("objinsync", 0.0, r=1, status="failed"),
                  polled("objsync", 9.9, phase="daemon")])  # another phase: not in these rows
    ours, theirs = listpoll.rows(res)
    assert (ours.tool, ours.measured, ours.polls, ours.cpu.median) == ("objsync", 2, 40, pytest.approx(0.09))
    assert ours.problems == ("r2 MISMATCH: missing: a.py",) and theirs.problems == ("r1 failed: it exited",)
    assert listpoll.cpu_ratio(ours, theirs) == pytest.approx(0.45)
    text = listpoll.section(res)
    assert "- goal, objsync: CPU per quiet poll ≤ 0.5 × objinsync's: 0.45, met" in text
    assert "every 2.0 s" in text and "- objsync, left out: r2 MISMATCH" in text


def test_without_objinsync_the_goal_cannot_be_told():
    text = listpoll.section(result([polled("objsync", 0.08)], tools=("objsync",)))
    assert "cannot tell (objinsync was not measured)" in text
    assert listpoll.section(result([])) == ""


def summary(phase, tool, rss_mib, failed=0):
    return {"phase": phase, "tool": tool, "peak_rss": {"median": rss_mib * MIB}, "failed": failed, "mismatched": 0}


def test_memory_per_extra_object_between_two_tree_sizes():
    small = {"meta": {"files": 10_000}, "summaries": [summary("cold", "objsync", 60), summary("cold", "objinsync", 40),
                                                      summary("cold", "objsync@64", 1)],
             "list_daemon": [{"tool": "objsync", "peak_rss": {"median": 66.0}}]}
    large = {"meta": {"files": 100_000}, "summaries": [summary("cold", "objsync", 90), summary("cold", "objinsync", 63),
                                                       summary("noop", "objsync", 99, failed=1)],
             "list_daemon": [{"tool": "objsync", "peak_rss": {"median": 150.0}}]}
    rows = {(g.phase, g.tool): g for g in scaling.growth(small, large)}
    assert set(rows) == {("cold", "objsync"), ("cold", "objinsync"), ("list-daemon", "objsync")}
    assert rows["cold", "objsync"].kib_per_object == pytest.approx(30 * 1024 / 90_000)  # 0.34 KiB
    text = scaling.render(list(rows.values()), ("dags10k", "dags100k"))
    (cold,) = [ln for ln in text.splitlines() if ln.startswith("| cold        | objsync ")]
    assert [c.strip() for c in cold.split("|")[1:-1]] == ["cold", "objsync", "60.0", "90.0", "0.34", "NOT met",
                                                          "1.43", "NOT met"]
    assert "## Memory from 10,000 to 100,000 objects (dags10k → dags100k)" in text

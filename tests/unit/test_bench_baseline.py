"""A baseline build of objsync as its own tool: how it is found and run, and how it is compared."""

import argparse
import sys
from pathlib import Path

import pytest

from objsync.bench import baseline, cli, output, peers
from objsync.bench.baseline import HIGHER, LOWER, NO_SPREAD, WITHIN
from objsync.bench.phases import BenchPlan, BenchResult, DaemonRecord, RunRecord, Work
from objsync.bench.polls import PollStats
from objsync.bench.presets import PRESETS
from objsync.bench.stats import Spread
from objsync.bench.verify import Check

OK = Check(ok=True, mode="full", hashed=1)
BASE = peers.BASELINE


@pytest.fixture
def old_bin(tmp_path):
    exe = tmp_path / "old" / "objsync"
    exe.parent.mkdir()
    exe.write_text("#!/bin/sh\necho objsync 0.0.9\n")
    exe.chmod(0o755)
    return str(exe)


def test_the_baseline_is_found_from_the_flag_before_the_variable(old_bin, tmp_path):
    assert peers.find_baseline(old_bin, {peers.BASELINE_VAR: "/nowhere"}) == (old_bin, "")
    assert peers.find_baseline(None, {peers.BASELINE_VAR: old_bin}) == (old_bin, "")
    assert peers.find_baseline(None, {})[0] is None
    exe, why = peers.find_baseline(None, {peers.BASELINE_VAR: str(tmp_path)})
    assert exe is None and why == f"{peers.BASELINE_VAR}={tmp_path} is not an executable file"


def test_the_baseline_is_run_and_checked_as_objsync_from_its_own_executable(old_bin):
    ours, base = peers.objsync_tool(("--workers", "1")), peers.baseline_tool(old_bin, ("--workers", "1"))
    assert (base.name, base.ignore, base.has_daemon) == (BASE, ours.ignore, True)
    d = Path("/d")
    assert peers.sync_command(base, "s3://b/p/", None, d)[1:] == peers.sync_command(ours, "s3://b/p/", None, d)[3:]
    assert peers.daemon_command(base, "s3://b/p/", None, d, "1s", "h:1")[0] == old_bin
    assert "PYTHONPATH" not in peers.tool_env(base, {"PYTHONPATH": "/work/main"}, {}, None)
    assert peers.tool_env(ours, {"PYTHONPATH": "/src"}, {}, None)["PYTHONPATH"] == "/src"
    assert output.described(base, {}).startswith("objsync 0.0.9 at ")


def parse(*argv):
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser.parse_args(argv), parser


def test_the_bench_runs_the_baseline_beside_objsync_with_the_same_flags(old_bin):
    args, parser = parse("--tools", "objsync", "--workers", "2", "--baseline-bin", old_bin)
    tools, missing = cli._tools(args, {}, parser)
    assert [(t.name, t.extra) for t in tools] == [("objsync", ("--workers", "2")), (BASE, ("--workers", "2"))]
    args, parser = parse("--tools", "objsync")
    assert [t.name for t in cli._tools(args, {peers.BASELINE_VAR: old_bin}, parser)[0]] == ["objsync", BASE]
    assert [t.name for t in cli._tools(args, {}, parser)[0]] == ["objsync"]
    args, parser = parse("--sweep", "--sweep-workers", "1", "--sweep-threads", "4", "--baseline-bin", old_bin)
    assert cli._tools(args, {}, parser) == ([peers.objsync_tool(("--workers", "1", "--threads", "4"),
                                                                name="--workers 1 --threads 4")],
                                            {BASE: "--sweep times this build's settings only"})
    args, parser = parse("--tools", "objsync", "--baseline-bin", sys.prefix)
    with pytest.raises(SystemExit):
        cli._tools(args, {}, parser)


def test_durations_take_the_forms_of_objsync_interval():
    assert [cli._duration(t) for t in ("500ms", "2s", "1m", "1.5")] == [0.5, 2.0, 60.0, 1.5]
    for bad in ("0s", "fast", "-1"):
        with pytest.raises(argparse.ArgumentTypeError):
            cli._duration(bad)


def run(tool, phase, r, wall, rc=0, requests=100):
    return RunRecord(tool=tool, phase=phase, repeat=r, wall=wall, cpu=wall / 2, peak_rss=60 << 20,
                     requests=requests, rc=rc, check=OK, load1=0.1)


def daemon(tool, r, cpu):
    stats = PollStats("ok", polls=20, cpu_per_poll=cpu, pass_seconds=cpu * 2, requests_per_poll=11.0,
                      peak_rss=64 << 20)
    return DaemonRecord(tool, stats, OK, repeat=r)


def result(runs, daemons=()):
    return BenchResult(plan=BenchPlan(PRESETS["tiny"]), tools=("objsync", BASE), work={"cold": Work(50, 1)},
                       runs=tuple(runs), daemons=tuple(daemons))


def test_ratios_pair_the_rounds_and_judge_against_the_spread():
    res = result([run("objsync", "cold", r, w) for r, w in enumerate((1.0, 1.1, 1.2))]
                 + [run(BASE, "cold", r, w) for r, w in enumerate((1.0, 1.2, 1.3))]
                 + [run("objsync", "noop", r, w) for r, w in enumerate((2.0, 2.1, 2.2))]
                 + [run(BASE, "noop", r, w) for r, w in enumerate((1.0, 1.1, 1.9))]
                 + [run("objsync", "incremental", 0, 0.5, rc=1), run("objsync", "incremental", 1, 0.5)]
                 + [run(BASE, "incremental", r, 1.0) for r in range(2)],
                 [daemon("objsync", r, c) for r, c in enumerate((0.2, 0.3))] + [daemon(BASE, 0, 0.4)])
    rows = {(v.phase, v.measure): v for v in baseline.compare(res, "objsync", BASE)}
    cold = rows["cold", "wall s"]
    assert (cold.ours, cold.base, cold.ratio) == (Spread(1.1, 1.0, 1.2, 3), Spread(1.2, 1.0, 1.3, 3), 1.1 / 1.2)
    assert (cold.rounds.low, cold.rounds.high) == (1.1 / 1.2, 1.0)
    assert cold.noise == pytest.approx(0.3 / 1.2) and cold.verdict == WITHIN
    assert rows["noop", "wall s"].verdict == HIGHER and rows["noop", "requests"].verdict == WITHIN
    # The failed run is left out, so one good run is compared: no spread to judge by.
    assert rows["incremental", "wall s"].ours.n == 1 and rows["incremental", "wall s"].verdict == NO_SPREAD
    assert rows["daemon", "CPU s/poll"].ratio == pytest.approx(0.25 / 0.4)
    assert baseline.judge(Spread(1.0, 0.9, 1.1, 3), Spread(2.0, 1.9, 2.1, 3)) == LOWER
    text = baseline.section(res, "objsync", BASE, "objsync 0.0.9 at abc1234")
    assert "- higher beyond the noise: noop wall s (1.91), noop CPU s (1.91)" in text
    row = next(line for line in text.splitlines() if line.startswith("| cold ") and "wall s" in line)
    assert [c.strip() for c in row.strip("|").split("|")] == [
        "cold", "wall s", "1.10 (1.00–1.20)", "1.20 (1.00–1.30)", "0.92", "0.92–1.00", "25 %", WITHIN]

"""The concurrency sweep: each tool's in-flight flag, the best setting per phase, and the goal lines."""

import argparse
from pathlib import Path

import pytest

from objsync.bench import cli, peers, report, variants
from objsync.bench.peers import Tool
from objsync.bench.phases import BenchPlan, BenchResult, RunRecord, Work
from objsync.bench.presets import PRESETS
from objsync.bench.verify import Check

OK = Check(ok=True, mode="full", hashed=1)
BAD = Check(ok=False, mode="full", hashed=1, problems=("missing: a.py",))
D = Path("/d")


def tools():
    return [peers.objsync_tool(), Tool("s5cmd", "s5cmd", ("/bin/s5cmd",)), Tool("aws", "aws", ("/bin/aws",)),
            Tool("rclone", "rclone", ("/bin/rclone",)), Tool("objinsync", "objinsync", ("/bin/objinsync",))]


def test_each_tool_gets_its_own_in_flight_flag(tmp_path):
    swept = {t.name: t for t in variants.with_variants(tools(), (8, 256), tmp_path / "config")}
    assert list(swept) == ["objsync", "objsync@8", "objsync@256", "s5cmd", "s5cmd@8", "aws", "aws@8", "aws@256",
                           "rclone", "rclone@8", "rclone@256", "objinsync"]  # s5cmd@256 is its default
    assert peers.sync_command(swept["objsync@8"], "s3://b/p/", None, D)[-4:] == ["--threads", "8", "s3://b/p/", "/d"]
    # s5cmd's flag is global: it must come before the subcommand.
    assert peers.sync_command(swept["s5cmd@8"], "s3://b/p/", None, D)[:4] == ["/bin/s5cmd", "--numworkers", "8",
                                                                                "sync"]
    assert "--transfers" in peers.sync_command(swept["rclone@8"], "s3://b/p/", None, D)
    env = peers.tool_env(swept["aws@8"], {}, {}, None)
    assert Path(env["AWS_CONFIG_FILE"]).read_text() == "[default]\ns3 =\n    max_concurrent_requests = 8\n"
    assert "AWS_CONFIG_FILE" not in peers.tool_env(swept["aws"], {}, {}, None)
    assert swept["objsync@8"].concurrency == 8 and swept["objsync"].concurrency is None
    assert peers.variant_of("objsync-base@32") == ("objsync-base", 32) and peers.variant_of("aws") == ("aws", None)


def test_the_tool_env_points_endpoint_variables_at_the_endpoint_it_is_given():
    env = peers.tool_env(peers.objsync_tool(), {"AWS_ENDPOINT_URL": "http://server"}, {}, "http://proxy")
    assert env["AWS_ENDPOINT_URL"] == "http://proxy" and "AWS_ENDPOINT_URL_S3" not in env


def run(tool, phase, wall, r=0, check=OK):
    return RunRecord(tool=tool, phase=phase, repeat=r, wall=wall, cpu=1.0, peak_rss=1 << 20, requests=1, rc=0,
                     check=check, load1=0.0)


def summaries(runs):
    names = tuple(dict.fromkeys(r.tool for r in runs))
    work = {ph: Work() for ph in ("cold", "noop", "incremental", "daemon", "list-daemon")}
    return report.summarize(BenchResult(BenchPlan(PRESETS["tiny"]), names, work, tuple(runs)))


SWEEP = [run("objsync", "cold", 3.0), run("objsync@64", "cold", 2.0),
         run("s5cmd", "cold", 5.0), run("s5cmd@64", "cold", 2.5, check=BAD),  # a wrong copy never wins
         run("rclone", "cold", 10.0), run("rclone@64", "cold", 4.0),
         run("objinsync", "cold", 8.0),
         run("objsync", "daemon", 0.1), run("s5cmd", "daemon", 1.0)]


def test_the_best_setting_is_the_fastest_correct_one_and_the_defaults_stay_beside_it():
    picks = {(p.phase, p.family): p for p in variants.picks(summaries(SWEEP))}
    assert set(picks) == {("cold", t) for t in ("objsync", "s5cmd", "rclone", "objinsync")}  # no daemon rows
    assert (picks["cold", "objsync"].setting, picks["cold", "objsync"].best.wall.median) == (64, 2.0)
    assert (picks["cold", "s5cmd"].setting, picks["cold", "s5cmd"].best.tool) == (None, "s5cmd")
    assert picks["cold", "rclone"].default.wall.median == 10.0 and picks["cold", "rclone"].setting == 64


def test_the_goals_compare_with_the_fastest_peer_at_defaults_and_at_best():
    rows = variants.picks(summaries(SWEEP))
    # Defaults: objsync 3.0 against s5cmd 5.0 (0.6, met); best: 2.0 against rclone@64 4.0 (0.5, met).
    assert variants.goal_lines(rows, ["objsync"]) == [
        "- objsync, cold at defaults: 3.00 s against s5cmd 5.00 s = 0.60 (goal ≤ 0.6): met",
        "- objsync, cold at best: 2.00 s against rclone 4.00 s = 0.50 (goal ≤ 0.8): met"]
    text = variants.section(summaries(SWEEP), ["objsync"])
    (line,) = [ln for ln in text.splitlines() if ln.startswith("| cold  | objsync ")]
    assert [c.strip() for c in line.split("|")[1:-1]] == [
        "cold", "objsync", "3.00 (3.00–3.00)", "2.00 (2.00–2.00)", "64 in flight", "0.60", "0.50"]
    assert "- s5cmd: --numworkers N" in text and "- objinsync: none: 5 download workers, fixed" in text
    only_ours = variants.picks(summaries([run("objsync", "cold", 1.0)]))
    assert variants.goal_lines(only_ours, ["objsync"])[0] == "- objsync, cold at defaults: no correct runs to compare"


def test_the_main_ratio_table_leaves_the_variants_to_their_own_section():
    got = report.ratios(summaries(SWEEP), ["objsync"])
    assert {(r.phase, r.theirs) for r in got} == {("cold", "s5cmd"), ("cold", "rclone"), ("cold", "objinsync"),
                                                  ("daemon", "s5cmd")}


def parse(*argv):
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return parser.parse_args(argv), parser


def test_flags_latency_and_sweep():
    args, parser = parse("--latency", "20ms", "--sweep-concurrency", "8,64")
    plan = cli._plan(args, parser)
    assert args.latency == pytest.approx(0.02) and args.sweep_concurrency == (8, 64)
    assert "list-daemon" in plan.phases
    args, parser = parse("--sweep")
    assert not {"daemon", "list-daemon"} & set(cli._plan(args, parser).phases)
    for bad in (("--latency", "20ms", "--bucket", "b", "--endpoint-url", "https://s3.example.com"),
                ("--sweep", "--sweep-concurrency", "8"), ("--sweep-concurrency", "0")):
        args, parser = parse(*bad)
        with pytest.raises(SystemExit):
            cli._plan(args, parser)
    args, parser = parse("--latency", "20ms", "--bucket", "b", "--endpoint-url", "http://127.0.0.1:8333")
    assert cli._plan(args, parser).phases[0] == "cold"

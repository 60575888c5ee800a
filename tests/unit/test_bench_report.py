"""Pure parts of the benchmark: statistics, ratios, ordering, tables, metrics parsing, commands."""

from pathlib import Path

import pytest

from objsync.bench import peers, promtext, report
from objsync.bench.peers import Tool
from objsync.bench.phases import BenchPlan, BenchResult, RunRecord, Work, interleave
from objsync.bench.presets import PRESETS, Expect
from objsync.bench.seeding import bucket_problems
from objsync.bench.stats import Spread, rate, ratio, spread
from objsync.bench.verify import Check

OK = Check(ok=True, mode="full", hashed=1)


def run(tool, phase, wall, cpu=1.0, rss=100 << 20, r=0, rc=0, check=OK, requests=10):
    return RunRecord(tool=tool, phase=phase, repeat=r, wall=wall, cpu=cpu, peak_rss=rss, requests=requests,
                     rc=rc, check=check, load1=0.5)


def test_spread_median_min_max():
    assert spread([3.0, 1.0, 2.0]) == Spread(2.0, 1.0, 3.0, 3)
    assert spread([4.0, 1.0]) == Spread(2.5, 1.0, 4.0, 2)
    assert spread([None, 5.0]) == Spread(5.0, 5.0, 5.0, 1)
    assert spread([None]) is None


def test_ratio_and_rate():
    assert ratio(2.0, 8.0) == 0.25
    assert ratio(1.0, 0.0) is None and ratio(None, 1.0) is None
    assert rate(100, 4.0) == 25.0
    assert rate(0, 4.0) is None


def test_interleave_rotates_the_start_and_honours_fewer_repeats():
    a, b, c = (Tool(n, "s5cmd", (n,)) for n in "abc")
    order = interleave([a, b, c], lambda t: 1 if t is c else 3)
    assert [(t.name, r) for t, r in order] == [
        ("a", 0), ("b", 0), ("c", 0), ("b", 1), ("a", 1), ("a", 2), ("b", 2)]


def result(runs):
    return BenchResult(plan=BenchPlan(PRESETS["tiny"], repeats=3), tools=("objsync", "s5cmd"),
                       work={"cold": Work(50, 5_000_000), "noop": Work(), "incremental": Work(), "daemon": Work()},
                       runs=tuple(runs))


def test_summaries_and_ratios_use_medians():
    res = result([run("objsync", "cold", w, cpu=w) for w in (1.0, 2.0, 9.0)]
                 + [run("s5cmd", "cold", w, cpu=2 * w, rss=50 << 20) for w in (4.0, 4.0, 5.0)])
    sums = report.summarize(res)
    ours = sums[0]
    assert (ours.tool, ours.wall, ours.files_per_s, ours.mb_per_s) == ("objsync", Spread(2.0, 1.0, 9.0, 3), 25.0, 2.5)
    (r,) = report.ratios(sums, ["objsync"])
    assert (r.theirs, r.wall, r.cpu, r.peak_rss) == ("s5cmd", 0.5, 0.25, 2.0)


def test_failures_and_mismatches_are_loud():
    bad = Check(ok=False, mode="full", hashed=3, problems=("missing: a.py",))
    res = result([run("objsync", "cold", 1.0), run("objsync", "cold", 1.0, check=bad, r=1),
                  run("objsync", "cold", 1.0, rc=1, r=2)])
    (s,) = report.summarize(res)
    assert report.verdict(s) == "**1 FAILED, 1 MISMATCH** of 3"
    assert "!!! MISMATCH (full): missing: a.py" in report.describe(res.runs[1])
    assert report.best_per_phase([s]) == []


def test_best_per_phase_by_wall_or_cpu():
    res = result([run("objsync", "cold", 1.0, cpu=5.0), run("s5cmd", "cold", 2.0, cpu=1.0)])
    sums = report.summarize(res)
    assert [s.tool for s in report.best_per_phase(sums)] == ["objsync"]
    assert [s.tool for s in report.best_per_phase(sums, "cpu")] == ["s5cmd"]


def test_markdown_table_pads_and_aligns():
    text = report.markdown_table(["tool", "s"], [["objsync", "1.00"], ["aws", "12.50"]], right=[False, True])
    assert text == ("| tool    |     s |\n"
                    "| ------- | ----: |\n"
                    "| objsync |  1.00 |\n"
                    "| aws     | 12.50 |")


def test_results_table_row():
    res = result([run("objsync", "cold", w) for w in (1.0, 2.0, 3.0)])
    table = report.results_table(report.summarize(res))
    row = table.splitlines()[2]
    assert [c.strip() for c in row.strip("|").split("|")] == [
        "cold", "objsync", "2.00", "1.00–3.00", "1.00", "100.0", "10", "25", "2.5", "n/a", "3/3 ok"]


def test_render_markdown_has_ratios_only_for_ours():
    res = result([run("objsync", "cold", 1.0), run("s5cmd", "cold", 4.0)])
    text = report.render_markdown(res, {"files": 50, "bytes": 1}, ["objsync"])
    assert "| cold  | objsync | 0.25 (cpu 1.00, rss 1.00) |" in text
    assert "## Ratios" not in report.render_markdown(res, {}, [])


SEAWEED_METRICS = """\
# HELP SeaweedFS_s3_request_total Counter of s3 requests.
# TYPE SeaweedFS_s3_request_total counter
SeaweedFS_s3_request_total{bucket="",code="403",type="LIST"} 1
SeaweedFS_s3_request_total{bucket="b",code="200",type="GET"} 20
SeaweedFS_s3_request_total{bucket="b",code="412",type="GET"} 1
SeaweedFS_s3_request_total{bucket="other",code="200",type="PUT"} 6
"""


def test_prometheus_totals_filter_by_label():
    assert promtext.total(SEAWEED_METRICS, promtext.S3_REQUESTS, {"bucket": "b"}) == 21
    assert promtext.total(SEAWEED_METRICS, promtext.S3_REQUESTS) == 28
    assert promtext.s3_requests(None, "b") is None


def test_bucket_problems_names_each_difference():
    model = {"a": Expect(3, "0" * 32), "b": Expect(4, "1" * 32), "c": Expect(5, "2" * 32)}
    listed = {"a": (3, "0" * 32), "b": (4, "f" * 32), "c": (6, "2" * 32), "d": (1, "x")}
    assert bucket_problems(listed, model) == [
        "unexpected in bucket: d", f"b: bucket ETag {'f' * 32} is not the MD5 {'1' * 32}",
        "c: bucket has 6 bytes, expected 5"]
    assert bucket_problems({"a": (3, "9" * 32 + "-2")}, {"a": Expect(3, "0" * 32)}) == []


@pytest.mark.parametrize("kind, expected", [
    ("objsync", ["X", "pull", "--once", "--endpoint-url", "http://h:1", "s3://b/p/", "/d"]),
    ("s5cmd", ["X", "--endpoint-url", "http://h:1", "sync", "--delete", "s3://b/p/*", "/d/"]),
    ("aws", ["X", "s3", "sync", "--delete", "--endpoint-url", "http://h:1", "--only-show-errors", "s3://b/p/", "/d"]),
    ("rclone", ["X", "sync", "--fast-list", "objsyncbench:b/p", "/d"]),
    ("objinsync", ["X", "pull", "--once", "--s3-endpoint", "http://h:1", "--disable-ssl", "s3://b/p/", "/d"]),
])
def test_sync_commands(kind, expected):
    assert peers.sync_command(Tool(kind, kind, ("X",)), "s3://b/p/", "http://h:1", Path("/d")) == expected


def test_rclone_env_drops_ca_bundle_and_configures_the_remote():
    env = peers.tool_env(Tool("rclone", "rclone", ("rclone",)), {"AWS_CA_BUNDLE": "/ca", "AWS_PROFILE": "x"},
                         {"AWS_ACCESS_KEY_ID": "k", "AWS_REGION": "us-east-1"}, "http://h:1")
    assert "AWS_CA_BUNDLE" not in env and "AWS_PROFILE" not in env
    assert env["RCLONE_CONFIG_OBJSYNCBENCH_ENDPOINT"] == "http://h:1"
    assert env["RCLONE_CONFIG_OBJSYNCBENCH_PROVIDER"] == "Other"
    other = peers.tool_env(Tool("aws", "aws", ("aws",)), {"AWS_CA_BUNDLE": "/ca"}, {}, None)
    assert other == {"AWS_CA_BUNDLE": "/ca"}


def test_objinsync_only_from_its_variable(tmp_path):
    found, missing = peers.find_peers({"PATH": str(tmp_path)}, ("objinsync",))
    assert found == [] and "OBJINSYNC_BIN" in missing["objinsync"]


def test_source_digest_notices_an_edit(tmp_path):
    from objsync.bench.context import source_digest

    (tmp_path / "a.py").write_text("x = 1\n")
    before = source_digest(tmp_path)
    assert source_digest(tmp_path) == before
    (tmp_path / "a.py").write_text("x = 2\n")
    assert source_digest(tmp_path) != before


def test_compile_package_writes_bytecode_beside_each_module(tmp_path, monkeypatch):
    from objsync.bench.context import compile_package

    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")  # as in CI: no run would write it otherwise
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "sub" / "b.py").write_text("y = 2\n")
    assert compile_package(tmp_path).startswith("compiled")
    assert len(list(tmp_path.rglob("__pycache__/*.pyc"))) == 2
    (tmp_path / "bad.py").write_text("def (\n")
    assert "could not" in compile_package(tmp_path)

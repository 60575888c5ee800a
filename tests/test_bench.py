"""`objsync bench` end to end on the tiny preset, and the process-tree measurement it relies on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest


def test_tiny_bench_verifies_and_reports(seaweed, bucket, aws_env, tmp_path):
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "objsync.bench", "--preset", "tiny", "--tools", "objsync", "--repeats", "1",
         "--endpoint-url", seaweed.endpoint_url, "--bucket", bucket, "--daemon-polls", "20",
         "--daemon-interval", "100ms", "--no-chart",
         "--out", str(out), "--workdir", str(tmp_path / "work")],
        capture_output=True, text=True, env=dict(os.environ) | aws_env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    (md,) = out.glob("tiny-*.md")
    (js,) = out.glob("tiny-*.json")
    doc = json.loads(js.read_text())
    runs = {r["phase"]: r for r in doc["runs"]}
    assert set(runs) == {"cold", "noop", "incremental"}
    for r in runs.values():
        assert r["check"]["ok"] and r["check"]["mode"] == "full" and r["check"]["hashed"] >= 49
        assert r["rc"] == 0 and r["wall"] > 0 and r["cpu"] > 0 and r["peak_rss"] > 10 << 20
    cold = next(s for s in doc["summaries"] if s["phase"] == "cold")
    assert cold["files_per_s"] > 0 and cold["mb_per_s"] > 0
    assert doc["work"]["incremental"] == {"files": 2, "bytes": doc["work"]["incremental"]["bytes"], "deleted": 1}
    daemons = {d["phase"]: d for d in doc["daemons"]}
    assert set(daemons) == {"daemon", "list-daemon"} and len(doc["daemons"]) == 2
    for daemon in daemons.values():
        if daemon["stats"]["status"] == "ok":
            # 20 polls, so that the CPU of no-op passes of 50 files adds up to more than a clock tick.
            assert daemon["stats"]["polls"] >= 20 and daemon["stats"]["cpu_per_poll"] > 0 and daemon["check"]["ok"]
        else:
            assert daemon["stats"]["status"] == "skipped" and daemon["stats"]["reason"]
    (listed,) = doc["list_daemon"]
    assert listed["tool"] == "objsync" and listed["measured"] == (daemons["list-daemon"]["stats"]["status"] == "ok")
    text = md.read_text()
    assert "| cold        | objsync |" in text and "1/1 ok" in text
    assert "## LIST-mode daemon, quiet polls" in text and "cannot tell (objinsync was not measured)" in text
    assert text == proc.stdout
    assert not list(tmp_path.joinpath("work").glob("dest/*")), "destinations are removed afterwards"


CHILDREN = textwrap.dedent("""
    import subprocess, sys, time
    burn = "import time\\nblob = bytearray(60 << 20)\\nt = time.process_time()\\nwhile time.process_time() - t < 0.4: pass"
    kids = [subprocess.Popen([sys.executable, "-c", burn]) for _ in range(2)]
    orphan = subprocess.Popen([sys.executable, "-c", burn + "\\ntime.sleep(0.3)"])
    for k in kids:
        k.wait()
""")


MEASURE = textwrap.dedent("""
    import json, os, sys
    from pathlib import Path
    from objsync.bench.measure import become_subreaper, run_measured
    become_subreaper()
    usage = run_measured([sys.executable, "-c", sys.argv[1]], dict(os.environ), stdout=Path(sys.argv[2]) / "out",
                         stderr=Path(sys.argv[2]) / "err")
    print(json.dumps(usage.__dict__))
""")


def test_measure_sums_the_whole_tree_including_orphans(tmp_path):
    # In its own process: becoming a subreaper would outlive this test in the pytest process.
    proc = subprocess.run([sys.executable, "-c", MEASURE, CHILDREN, str(tmp_path)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    usage = json.loads(proc.stdout)
    assert usage["rc"] == 0, (tmp_path / "err").read_text()
    assert usage["cpu"] >= 3 * 0.4  # three busy grandchildren, one of which outlives its parent
    assert usage["peak_rss"] >= 2 * (60 << 20)  # at least two 60 MiB children alive at one sample
    assert usage["wall"] >= 0.4


def test_wait_exact_returns_the_exit_status_or_times_out():
    from objsync.bench.measure import wait_exact

    quick = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    assert wait_exact(quick, 30) == 3
    slow = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            wait_exact(slow, 0.2)
        assert slow.poll() is None  # still running: the caller decides what to do with it
    finally:
        slow.kill()
        slow.wait()

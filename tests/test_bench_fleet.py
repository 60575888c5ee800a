"""The fleet phase end to end on a small fleet: its own SeaweedFS, manifests, and polls in each mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def test_fleet_phase_measures_one_request_per_quiet_manifest_poll(aws_env, tmp_path):
    out = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "objsync.bench", "--phases", "fleet", "--fleet-repos", "4", "--fleet-files", "2100",
         "--daemon-polls", "8", "--daemon-interval", "300ms", "--out", str(out)],
        capture_output=True, text=True, env=dict(os.environ) | aws_env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (js,) = out.glob("fleet-*.json")
    rows = {r["name"]: r for r in json.loads(js.read_text())["rows"]}
    quiet = rows["objsync, manifest mode (quiet poll)"]["stats"]
    rescan = rows["objsync, manifest mode (rescan poll)"]["stats"]
    listed = rows["objsync, LIST mode"]["stats"]
    assert quiet["status"] == rescan["status"] == listed["status"] == "ok", rows
    # A pass in flight when the counters are read can move a mean by one pass's requests over the polls.
    assert quiet["requests_per_poll"] == pytest.approx(1, abs=0.3)  # one LIST of the manifests folder
    assert rescan["requests_per_poll"] == pytest.approx(2, abs=0.7)  # and one LIST of the top level
    assert listed["requests_per_poll"] == pytest.approx(3, abs=1)  # 2,108 objects are three pages of 1,000
    assert quiet["requests_per_poll"] < rescan["requests_per_poll"] < listed["requests_per_poll"]
    # CPU is measured, not compared: a quiet LIST poll that matches its page digests costs about what a
    # manifest poll does, and clock ticks may add a few polls up to 0.
    assert all(0 <= s["cpu_per_poll"] < 1 for s in (quiet, rescan, listed))
    # One request a poll is $8.64 a day for the fleet; the mean measured may be off by a pass, as above.
    assert rows["objsync, manifest mode (quiet poll)"]["cost_per_day"] == pytest.approx(
        8.64 * quiet["requests_per_poll"], abs=0.01)
    assert rows["objinsync"]["stats"]["status"] == "skipped"
    assert "| objsync, LIST mode" in proc.stdout

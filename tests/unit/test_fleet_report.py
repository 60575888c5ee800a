"""The fleet phase's arithmetic and report: cost per day, the rescan mean, the manifests it writes."""

import pytest

from objsync.bench.fleet import FleetRow, amortized, cost_per_day, fleet_preset, manifests, render
from objsync.bench.polls import PollStats
from objsync.bench.presets import build_tree, expectations


def test_cost_per_day_at_s3_list_prices():
    # 100 pods, a poll every 5 s: 1,728,000 polls a day; LIST at $0.005 per 1,000.
    assert cost_per_day(1) == pytest.approx(8.64)
    assert cost_per_day(100) == pytest.approx(864.0)
    assert cost_per_day(1, pods=1, interval=60) == pytest.approx(1440 * 0.005 / 1000)


def test_amortized_mean_of_quiet_and_rescan_polls():
    assert amortized(1.0, 2.0, interval=5, every=300) == pytest.approx(1 + 1 / 60)
    assert amortized(0.002, 0.6, interval=5, every=300) == pytest.approx(0.002 * 59 / 60 + 0.01)
    assert amortized(1.0, 2.0, interval=10, every=5) == 2.0  # every poll is a rescan


def test_manifests_cover_every_file_once_per_top_level_folder():
    files = build_tree(fleet_preset(5, 300), seed=3)
    written = manifests(files, 3)
    sums = expectations(files, 3)
    assert set(written) == {f.rel.split("/")[0] for f in files} and len(written) == 5
    assert sum(len(m.files) for m in written.values()) == 300
    for repo, m in written.items():
        for entry in m.files:
            assert (entry.size, entry.md5, entry.etag) == (sums[f"{repo}/{entry.path}"].size,) + (
                sums[f"{repo}/{entry.path}"].md5,) * 2
    assert all(f.size <= 8 * 1024 for f in files)


def test_report_names_the_target_and_the_fleet_cost():
    ok = dict(status="ok", polls=20, seconds=10.0, peak_rss=100 << 20)
    rows = [FleetRow("objsync, manifest mode (quiet poll)", (), PollStats(**ok, cpu_per_poll=0.002, requests_per_poll=1.0)),
            FleetRow("objsync, manifest mode (rescan poll)", (), PollStats(**ok, cpu_per_poll=0.6, requests_per_poll=2.0)),
            FleetRow("objsync, LIST mode", (), PollStats(**ok, cpu_per_poll=1.5, requests_per_poll=101.0)),
            FleetRow("objinsync", (), PollStats("skipped", "OBJINSYNC_BIN is not set"))]
    text = render(rows, {"objects": 100_000, "repos": 100, "bytes": 1 << 30, "seed_seconds": 1, "interval": 0.5,
                         "polls": 20, "requests_source": "x"})
    assert "| objsync, manifest mode (quiet poll)  |    20 |          1.00 |         2.0 |" in text
    assert "$8.64" in text and "$872.64" in text and "not run: OBJINSYNC_BIN is not set" in text
    assert "1.017 requests and 12.0 ms CPU per poll" in text and "met." in text

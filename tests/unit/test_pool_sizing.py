"""How many worker processes a pull starts by default, from CPUs and a container's CPU quota; how many files a
batch holds."""

import pytest

from objsync.pull import pool
from objsync.pull.pool import PoolConfig, available_cpus, default_workers


@pytest.mark.parametrize("files, expected", [
    ({"cpu.max": "max 100000\n"}, 8),
    ({"cpu.max": "150000 100000\n"}, 2),  # 1.5 CPUs round up
    ({"cpu.max": "50000 100000\n"}, 1),
    ({"cpu/cpu.cfs_quota_us": "300000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 3),  # cgroup v1
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, 8),
    ({"cpu.max": "garbage\n"}, 8),
    ({}, 8),
])
def test_container_quota_caps_the_cpu_count(tmp_path, monkeypatch, files, expected):
    monkeypatch.setattr(pool.psutil.Process, "cpu_affinity", lambda self: list(range(8)))
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert available_cpus(str(tmp_path)) == expected


@pytest.mark.parametrize("cpus, workers", [(1, 0), (2, 0), (3, 2), (4, 3), (64, 8)])
def test_small_machines_run_in_process(monkeypatch, cpus, workers):
    monkeypatch.setattr(pool, "available_cpus", lambda: cpus)
    assert default_workers() == workers


def test_a_batch_holds_twice_the_transfers_in_flight_unless_set():
    assert PoolConfig(workers=0, threads=64).files_per_batch == 128  # slots stay full until its last half
    assert PoolConfig(workers=0, threads=0).files_per_batch == 2
    assert PoolConfig(workers=0, threads=64, batch_files=10).files_per_batch == 10

import random

import pytest

from objsync.cli import parse_args
from objsync.daemon.config import parse_addr
from objsync.daemon.loop import BACKOFF_CAP, health_after, next_delay
from objsync.pull.config import parse_duration


def test_delay_is_the_interval_when_healthy():
    assert next_delay(5, 0) == 5


def test_backoff_grows_with_jitter_and_is_capped():
    rng = random.Random(1)
    delays = [next_delay(5, n, rng) for n in range(1, 10)]
    for n, d in enumerate(delays, start=1):
        ceiling = min(5 * 2 ** (n - 1), 5 * BACKOFF_CAP)
        assert ceiling / 2 <= d <= ceiling
    assert max(delays) <= 5 * BACKOFF_CAP


def test_health_rules():
    assert health_after(0, 3, False, "") == (False, "Pull not finished")
    assert health_after(0, 3, True, "") == (True, "GOOD")
    assert health_after(2, 3, True, "x") == (True, "GOOD")
    healthy, text = health_after(3, 3, True, "s3://b: listing failed")
    assert not healthy and "3 consecutive failed passes" in text and "listing failed" in text
    assert health_after(100, -1, True, "x") == (True, "GOOD")


@pytest.mark.parametrize("text, seconds", [("500ms", 0.5), ("5s", 5), ("1m", 60), ("2", 2), ("1.5s", 1.5)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5x", "-1s", "0", "soon"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize("addr, expected", [(":8087", ("0.0.0.0", 8087)), ("127.0.0.1:0", ("127.0.0.1", 0)),
                                            ("[::1]:9000", ("::1", 9000))])
def test_status_addresses(addr, expected):
    assert parse_addr(addr) == expected


@pytest.mark.parametrize("addr", ["8087", "host:", ":99999", "nonsense", ":\u00b2"])
def test_bad_status_addresses(addr):
    with pytest.raises(ValueError):
        parse_addr(addr)


def test_objinsync_flags_parse_with_the_same_meaning():
    args, _ = parse_args(["pull", "-o", "-i", "10s", "-e", "a/**,b", "-e", "c", "--scratch",
                                 "-m", "0644", "--s3-endpoint", "http://minio:9000", "--disable-ssl",
                                 "-s", ":9090", "s3://b/p", "/dags"], {})
    assert (args.once, args.interval, args.exclude, args.scratch) == (True, 10.0, ["a/**,b", "c"], True)
    assert (args.default_file_mode, args.endpoint_url, args.disable_ssl, args.status_addr) == (
        0o644, "http://minio:9000", True, ":9090")


def test_objinsync_defaults():
    args, _ = parse_args(["pull", "s3://b/p", "/dags"], {})
    assert (args.once, args.interval, args.status_addr, args.default_file_mode) == (False, 5.0, ":8087", 0o664)


def test_environment_supplies_defaults_and_flags_win():
    env = {"OBJSYNC_INTERVAL": "1m", "OBJSYNC_SCRATCH": "yes", "OBJSYNC_MAX_FAILURES": "-1",
           "OBJSYNC_NO_FSYNC": "ignored: not a flag's dest", "OBJSYNC_FSYNC": "none"}
    args, _ = parse_args(["pull", "s3://b", "d"], env)
    assert (args.interval, args.scratch, args.max_failures, args.fsync) == (60.0, True, -1, "none")
    assert parse_args(["pull", "-i", "2s", "s3://b", "d"], env)[0].interval == 2.0

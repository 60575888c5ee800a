"""A replacing file never keeps its predecessor's size and whole-second mtime, which Python's .pyc check trusts."""

import os

from objsync.pull.fetch import _distinct_mtime

T = 1_700_000_000 * 10**9


def old_file(tmp_path, size=5, mtime_ns=T + 200_000_000):
    (tmp_path / "helper.py").write_bytes(b"x" * size)
    os.utime(tmp_path / "helper.py", ns=(mtime_ns, mtime_ns))
    return os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)


def test_same_size_in_the_same_second_moves_one_second_on(tmp_path):
    fd = old_file(tmp_path)
    assert _distinct_mtime(T + 700_000_000, 5, fd, "helper.py") == T + 1_700_000_000


def test_otherwise_the_listed_mtime_stays(tmp_path):
    fd = old_file(tmp_path)
    assert _distinct_mtime(T + 700_000_000, 6, fd, "helper.py") == T + 700_000_000  # another size
    assert _distinct_mtime(T + 10**9, 5, fd, "helper.py") == T + 10**9  # another second
    assert _distinct_mtime(T, 5, fd, "new.py") == T  # nothing replaced

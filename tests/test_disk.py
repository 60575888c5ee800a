"""Full disks and unwritable folders, on a real 2 MiB tmpfs and real immutable files: clear errors, nothing lost."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from support import pull, put, tree

from objsync.model import Entry
from objsync.pull.state import State

OLD = {"f/a.py": b"a = 1\n", "f/b.py": b"b = 1\n", "f/team/c.py": b"c = 1\n"}


def _mount(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["mount", *args], capture_output=True, text=True)


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs at tmp_path/mnt, unmounted afterwards."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    done = _mount("-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt))
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); these tests need root or CAP_SYS_ADMIN")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(mnt: Path, leave: int = 0) -> Path:
    """Fill the file system with one file, leaving `leave` bytes (rounded to pages) free."""
    filler = mnt / "filler"
    with open(filler, "wb") as fh:
        while True:
            st = os.statvfs(mnt)
            room = st.f_bavail * st.f_frsize - leave
            if room <= 0:
                break
            try:
                fh.write(b"\0" * min(room, 1 << 20))
                fh.flush()
            except OSError:
                break
    return filler


def no_traceback(run) -> None:
    assert "Traceback" not in run.err, run.err
    for line in run.err.splitlines():
        json.loads(line)  # every line is a log record, never a stray message


def test_full_disk_keeps_old_files_names_each_file_and_leaves_no_temp_file(s3_client, bucket, small_disk, aws_env):
    put(s3_client, bucket, OLD)
    d = small_disk / "d"
    assert pull(f"s3://{bucket}/f", d, env=aws_env).rc == 0
    new = {"f/a.py": os.urandom(300_000), "f/new.bin": os.urandom(300_000)}
    put(s3_client, bucket, new)
    filler = fill(small_disk)

    run = pull(f"s3://{bucket}/f", d, env=aws_env)
    assert run.rc == 1
    no_traceback(run)
    errors = {e["key"]: e["error"] for e in run.summary["errors"]}
    assert set(errors) == {"f/a.py", "f/new.bin"}
    for key, error in errors.items():
        assert "no space left" in error and repr(key[2:]) in error and "free space" in error
    assert tree(d) == {k[2:]: v for k, v in OLD.items()}  # the old a.py is intact
    assert list((d / ".objsync/tmp").iterdir()) == []
    assert "cache in memory only" in run.err  # the cache could not be opened for writing...
    assert not list((d / ".objsync").glob("cache.broken-*"))  # ...and was not mistaken for a broken one

    filler.unlink()
    run = pull(f"s3://{bucket}/f", d, env=aws_env)
    assert run.rc == 0, run.err
    assert tree(d) == {k[2:]: v for k, v in (OLD | new).items()}
    assert (run.summary["fetched"], run.summary["verified"]) == (2, 0)  # the old cache was kept


def test_disk_filling_up_inside_a_file_never_leaves_a_partial_file(s3_client, bucket, small_disk, aws_env):
    put(s3_client, bucket, OLD)
    d = small_disk / "d"
    assert pull(f"s3://{bucket}/f", d, env=aws_env).rc == 0
    new = os.urandom(400_000)
    put(s3_client, bucket, {"f/a.py": new})
    fill(small_disk, leave=150_000)

    run = pull(f"s3://{bucket}/f", d, env=aws_env)
    no_traceback(run)
    assert (d / "a.py").read_bytes() in (OLD["f/a.py"], new)
    assert run.rc == 1 and "no space left" in run.summary["errors"][0]["error"]
    assert list((d / ".objsync/tmp").iterdir()) == []


def test_cache_on_a_full_disk_neither_crashes_nor_loses_files(s3_client, bucket, small_disk, aws_env):
    put(s3_client, bucket, OLD)
    d = small_disk / "d"
    assert pull(f"s3://{bucket}/f", d, env=aws_env).rc == 0
    s3_client.delete_object(Bucket=bucket, Key="f/b.py")
    os.utime(d / "a.py", ns=(1, 1))  # touched: its bytes are checked, and the cache would be updated
    filler = fill(small_disk)

    run = pull(f"s3://{bucket}/f", d, env=aws_env)
    assert run.rc == 0, run.err
    no_traceback(run)
    assert "cache in memory only" in run.err
    assert run.summary["deleted"] == 1 and run.summary["fetched"] == 0
    assert tree(d) == {"a.py": OLD["f/a.py"], "team/c.py": OLD["f/team/c.py"]}

    filler.unlink()
    run = pull(f"s3://{bucket}/f", d, env=aws_env)
    assert run.rc == 0 and run.summary["fetched"] == 0 and "cache" not in run.err
    assert pull(f"s3://{bucket}/f", d, env=aws_env).summary["verified"] == 0


def test_cache_writes_refused_by_a_full_disk_are_logged_not_raised(small_disk, caplog):
    one, two = Entry("e1", 1, 1, "h1"), Entry("e2", 2, 2, "h2")
    with State.open(small_disk / "cache", "id") as state:
        state.put([("a", one)])
        filler = fill(small_disk)
        state.put([(f"n{i}", two) for i in range(2000)])
        state.remove(["a"])
        assert "a" not in state.entries and state.entries["n1"] == two  # memory stays the truth
    assert sum("cannot update the cache" in r.getMessage() for r in caplog.records) == 1
    filler.unlink()
    with State.open(small_disk / "cache", "id") as state:
        assert state.notes == []
        # The disk copy holds at most what memory held: a stale entry names a file that is gone.
        assert set(state.entries) <= {"a"} | {f"n{i}" for i in range(2000)}


def test_read_only_folder_is_a_clear_error_and_changes_nothing(s3_client, bucket, small_disk, aws_env):
    put(s3_client, bucket, OLD)
    d = small_disk / "d"
    assert pull(f"s3://{bucket}/f", d, env=aws_env).rc == 0
    put(s3_client, bucket, {"f/a.py": b"a = 2\n"})
    assert _mount("-o", "remount,ro", str(small_disk)).returncode == 0
    try:
        run = pull(f"s3://{bucket}/f", d, env=aws_env)
    finally:
        assert _mount("-o", "remount,rw", str(small_disk)).returncode == 0
    assert run.rc == 1
    no_traceback(run)
    assert f"{d} is on a read-only file system; mount it read-write" in run.err
    assert tree(d) == {k[2:]: v for k, v in OLD.items()}
    assert pull(f"s3://{bucket}/f", d, env=aws_env).rc == 0 and (d / "a.py").read_bytes() == b"a = 2\n"


@pytest.fixture
def chattr(tmp_path):
    """Set the immutable attribute (which even root cannot write through); cleared afterwards."""
    marked: list[Path] = []

    def immutable(path: Path) -> None:
        done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"chattr +i is not supported here ({done.stderr.strip()})")
        marked.append(path)

    yield immutable
    for path in reversed(marked):
        subprocess.run(["chattr", "-i", str(path)], check=False)


def test_immutable_files_and_folders_are_named_and_the_rest_syncs(s3_client, bucket, tmp_path, chattr, aws_env):
    put(s3_client, bucket, OLD | {"f/x": b"x is a file"})
    d = tmp_path / "d"
    assert pull(f"s3://{bucket}/f", d, env=aws_env).rc == 0
    s3_client.delete_object(Bucket=bucket, Key="f/x")
    put(s3_client, bucket, {"f/a.py": b"a = 2\n", "f/team/new.py": b"new", "f/x/y.py": b"x is a folder",
                            "f/fine.py": b"fine"})
    chattr(d / "a.py")
    chattr(d / "team")
    chattr(d / "x")

    run = pull(f"s3://{bucket}/f", d, env=aws_env)
    assert run.rc == 1
    no_traceback(run)
    errors = {e["key"]: e["error"] for e in run.summary["errors"]}
    assert set(errors) == {"f/a.py", "f/team/new.py", "x", "f/x/y.py"}
    assert "permission denied writing 'a.py'" in errors["f/a.py"]
    assert "permission denied writing 'team/new.py'" in errors["f/team/new.py"]
    assert errors["x"].startswith("cannot move aside")
    assert (d / "a.py").read_bytes() == OLD["f/a.py"] and (d / "fine.py").read_bytes() == b"fine"
    assert list((d / ".objsync/tmp").iterdir()) == []


def test_unwritable_state_folder_or_destination_is_refused_with_what_to_do(s3_client, bucket, tmp_path, chattr,
                                                                          aws_env):
    put(s3_client, bucket, OLD)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    chattr(fresh)
    run = pull(f"s3://{bucket}/f", fresh, env=aws_env)
    assert run.rc == 1
    no_traceback(run)
    assert f"permission denied writing in {fresh}" in run.err and "chattr -i" in run.err

    d = tmp_path / "d"
    assert pull(f"s3://{bucket}/f", d, env=aws_env).rc == 0
    put(s3_client, bucket, {"f/a.py": b"a = 2\n"})
    chattr(d / ".objsync/tmp")
    run = pull(f"s3://{bucket}/f", d, env=aws_env)
    assert run.rc == 1
    no_traceback(run)
    assert "permission denied" in run.summary["errors"][0]["error"]
    assert (d / "a.py").read_bytes() == OLD["f/a.py"]

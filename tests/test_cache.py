"""A damaged cache is detected, set aside or cleared, and rebuilt, and no file whose bytes are right is downloaded."""

from __future__ import annotations

import os
import pickle
import shutil
import sqlite3
import subprocess
import uuid

import pytest
from support import pull, put, tree

FILES = {f"c/r{i % 3}/f{i}.py": f"x = {i}\n".encode() * (i + 1) for i in range(12)}
MARKER = f"/tmp/objsync-unpickled-{uuid.uuid4().hex[:12]}"


class _Exploit:
    """Unpickling this runs a command: a cache must never be read that way."""

    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


def _sql(d, statement: str, params=()) -> None:
    with sqlite3.connect(d / ".objsync/cache/cache.db") as db:
        db.execute(statement, params)


def _truncate(d) -> None:
    db = d / ".objsync/cache/cache.db"
    os.truncate(db, db.stat().st_size // 2)


def _zero_header(d) -> None:
    with open(d / ".objsync/cache/cache.db", "r+b") as fh:
        fh.write(b"\0" * 100)


def _wrong_version(d) -> None:
    _sql(d, "UPDATE Cache SET value = '0' || substr(value, 2) WHERE key = 'meta'")


def _pickled_value(d) -> None:
    row = ("f:r0/f0.py", 0, 0.0, None, 0.0, 0, None, 0, 4, None, pickle.dumps(_Exploit()))
    _sql(d, "DELETE FROM Cache WHERE key = 'f:r0/f0.py'")
    _sql(d, "INSERT INTO Cache (key, raw, store_time, expire_time, access_time, access_count, tag, size, "
            "mode, filename, value) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)


def _pickled_key(d) -> None:
    _sql(d, "INSERT INTO Cache (key, raw, store_time, access_time, access_count, size, mode, value) "
            "VALUES (?, 0, 0, 0, 0, 0, 1, 'x')", (pickle.dumps(_Exploit()),))


def _malformed_row(d) -> None:
    _sql(d, "UPDATE Cache SET value = 'not an entry' WHERE key = 'f:r1/f1.py'")


def _dir_is_a_file(d) -> None:
    shutil.rmtree(d / ".objsync/cache")
    (d / ".objsync/cache").write_bytes(b"not a folder")


def _db_is_a_folder(d) -> None:
    (d / ".objsync/cache/cache.db").unlink()
    (d / ".objsync/cache/cache.db").mkdir()


def _empty_db(d) -> None:
    os.truncate(d / ".objsync/cache/cache.db", 0)


def _garbage_wal(d) -> None:
    (d / ".objsync/cache/cache.db-wal").write_bytes(os.urandom(50_000))


# kind -> (damage, what the log says about it)
DAMAGE = {
    "truncated database": (_truncate, "moved it to"),
    "zeroed header": (_zero_header, "moved it to"),
    "wrong schema version": (_wrong_version, "another source or version"),
    "pickled value": (_pickled_value, "moved it to"),
    "pickled key": (_pickled_key, "moved it to"),
    "malformed row": (_malformed_row, "moved it to"),
    "cache folder is a file": (_dir_is_a_file, "moved it to"),
    "database is a folder": (_db_is_a_folder, "moved it to"),
    "zero-length database": (_empty_db, None),
    "garbage write-ahead log": (_garbage_wal, None),
}


@pytest.fixture(scope="module")
def synced(s3_client, seaweed, tmp_path_factory):
    """A bucket and a folder synced from it once, copied fresh for each test."""
    name = f"cache-{uuid.uuid4().hex[:16]}"
    s3_client.create_bucket(Bucket=name)
    put(s3_client, name, FILES)
    with pytest.MonkeyPatch.context() as mp:
        for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            mp.delenv(var, raising=False)
        env = seaweed.env()
        template = tmp_path_factory.mktemp("cache") / "d"
        assert pull(f"s3://{name}/c", template, env=env).rc == 0
        yield f"s3://{name}/c", template, env


def fresh_copy(synced, tmp_path):
    src, template, env = synced
    d = tmp_path / "d"
    shutil.copytree(template, d, symlinks=True)  # copy2 keeps mtimes to the nanosecond
    return src, d, env


@pytest.mark.parametrize("kind", DAMAGE)
def test_damaged_cache_is_rebuilt_without_downloading_anything(synced, tmp_path, kind):
    src, d, env = fresh_copy(synced, tmp_path)
    damage, said = DAMAGE[kind]
    damage(d)

    run = pull(src, d, env=env)
    assert run.rc == 0, run.err
    assert "Traceback" not in run.err
    assert run.summary["fetched"] == 0, kind
    assert run.summary["verified"] + run.summary["skipped"] == len(FILES)
    if said:
        assert said in run.err
    assert tree(d) == {k[2:]: v for k, v in FILES.items()}
    assert not os.path.exists(MARKER)  # nothing in the cache was ever unpickled
    # The rebuilt cache is trusted again: the next pass reads no file.
    again = pull(src, d, env=env)
    assert (again.summary["fetched"], again.summary["verified"]) == (0, 0), again.err


def test_immutable_cache_folder_runs_with_a_cache_in_memory(synced, tmp_path):
    src, d, env = fresh_copy(synced, tmp_path)
    (d / "r0/f0.py").write_bytes(b"edited")
    cache = d / ".objsync/cache"
    done = subprocess.run(["chattr", "+i", str(cache)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"chattr +i is not supported here ({done.stderr.strip()})")
    try:
        run = pull(src, d, env=env)
    finally:
        subprocess.run(["chattr", "-i", str(cache)], check=False)
    assert run.rc == 0, run.err
    assert "Traceback" not in run.err and "cache in memory only" in run.err
    assert run.summary["fetched"] == 1 and tree(d) == {k[2:]: v for k, v in FILES.items()}

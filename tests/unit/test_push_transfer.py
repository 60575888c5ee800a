"""The pure pieces of a push: what counts as stored as planned, running transfers, targets and reports."""

from __future__ import annotations

import pytest

from objsync.manifest import FileEntry
from objsync.push.plan import Transfer
from objsync.push.target import Target, report
from objsync.push.transfer import TransferMismatch, run_all, stored_entry
from objsync.s3.config import Location, RemoteConfig
from objsync.s3.records import Stored

MD5 = "0123456789abcdef0123456789abcdef"
T = Transfer(FileEntry("dags/a.py", 3, MD5, MD5), "p/r/dags/a.py", "new")


def test_the_stored_etag_must_be_one_expected():
    assert stored_entry(T, Stored(MD5.upper(), "v1"), (MD5,)) == FileEntry("dags/a.py", 3, MD5.upper(), MD5, "v1")
    with pytest.raises(TransferMismatch, match="another writer"):
        stored_entry(T, Stored("f" * 32), (MD5,))


def test_a_kms_etag_is_not_an_md5_and_is_taken_as_stored():
    entry = stored_entry(T, Stored("kmsetag", None, "aws:kms"), (MD5,))
    assert entry.etag == "kmsetag" and entry.md5 == MD5


def test_run_all_collects_results_and_names_each_failure():
    def fails(exc):
        def job():
            raise exc
        return job

    done, errors = run_all([("b", lambda: 2), ("z", fails(TransferMismatch("changed"))), ("a", lambda: 1),
                            ("c", fails(ValueError("bad")))], threads=2)
    assert sorted(done) == [1, 2]
    assert errors == [("c", "ValueError: bad"), ("z", "changed")]
    assert run_all([], threads=4) == ([], [])


def test_a_target_names_its_folder_and_manifests():
    t = Target("dev", Location("b", "dags/"), RemoteConfig(), "r")
    assert (t.folder, t.manifest_key) == ("dags/r/", "dags/.objsync/manifests/r.json")
    assert t.history_key("0123456789abcdef") == "dags/.objsync/history/r/0123456789abcdef.json"
    r = report("push", t, started=0.0, errors=[("k", "e")])
    assert not r.ok and r.as_dict()["errors"] == [{"key": "k", "error": "e"}] and r.seconds > 0

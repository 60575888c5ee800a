"""The pure parts of manifest mode: manifest names, layout checks, pins, and the listing built from manifests."""

from datetime import datetime, timezone

import pytest

from objsync.cli import parse_pins
from objsync.manifest import FileEntry, Manifest
from objsync.model import LocalFile, RemoteObject
from objsync.pull.plan import plan
from objsync.pull.versions import Refused, Version, layout_problem, manifest_listing, manifest_names, parse_manifest

MD5 = "0123456789abcdef0123456789abcdef"


def manifest(repo="a", paths=("x.py", "lib/y.py"), created="2024-05-01T12:00:00Z"):
    files = tuple(FileEntry(p, 10 + i, MD5 + "-2" if i else MD5, "f" * 32, f"v{i}") for i, p in enumerate(paths))
    return Manifest(repo, files, None, created, "0.1.0")


def obj(key, etag="e"):
    return RemoteObject(key, etag, 1, 0)


def test_manifest_names_takes_repo_json_files_only():
    folder = "p/.objsync/manifests/"
    found, problems = manifest_names([obj(folder + "a.json", "1"), obj(folder + "team-b.json", "2"),
                                      obj(folder + "c.txt"), obj(folder + "x/y.json"), obj(folder + "-bad.json"),
                                      obj(folder + ".json")], folder)
    assert {r: o.etag for r, o in found.items()} == {"a": "1", "team-b": "2"}
    assert sorted(p.key for p in problems) == sorted(folder + n for n in ("c.txt", "x/y.json", "-bad.json", ".json"))
    assert all(p.kind == "rejected" and "<repo>.json" in p.error for p in problems)


def test_layout_problems():
    assert layout_problem(manifest()) is None
    assert "both a file and a folder" in layout_problem(manifest(paths=("lib", "lib/y.py")))
    assert "Unicode normalization" in layout_problem(manifest(paths=("caf\u00e9.py", "cafe\u0301.py")))


def test_parse_manifest_checks_repo_id_and_layout():
    m = manifest()
    assert parse_manifest(m.to_json(), "a") == m
    assert parse_manifest(m.to_json(), "a", m.id) == m
    with pytest.raises(Refused, match="names repo 'a', not 'b'"):
        parse_manifest(m.to_json(), "b")
    with pytest.raises(Refused, match=f"holds version {m.id}, not 0000000000000000"):
        parse_manifest(m.to_json(), "a", "0000000000000000")
    with pytest.raises(Refused, match="not a JSON document"):
        parse_manifest(b"\x00", "a")
    with pytest.raises(Refused, match="both a file and a folder"):
        parse_manifest(manifest(paths=("lib", "lib/y.py")).to_json(), "a")


def test_pins():
    assert dict(parse_pins(["a=0123456789abcdef", "b = fedcba9876543210"])) == {
        "a": "0123456789abcdef", "b": "fedcba9876543210"}
    for bad, why in [("a", "REPO=MANIFEST_ID"), ("a=123", "manifest id"), ("../x=0123456789abcdef", "repo name")]:
        with pytest.raises(ValueError, match=why):
            parse_pins([bad])
    with pytest.raises(ValueError, match="pinned twice"):
        parse_pins(["a=0123456789abcdef", "a=fedcba9876543210"])


def test_manifest_listing_names_every_file_at_the_manifest_time():
    listing = manifest_listing("p", {"b": Version("e2", manifest("b", ("z.py",))), "a": Version("e1", manifest())})
    when = int(datetime(2024, 5, 1, 12, tzinfo=timezone.utc).timestamp()) * 10**9
    assert listing == [RemoteObject("p/a/lib/y.py", MD5 + "-2", 11, when, "v1", "f" * 32),
                       RemoteObject("p/a/x.py", MD5, 10, when, "v0", "f" * 32),
                       RemoteObject("p/b/z.py", MD5, 10, when, "v0", "f" * 32)]


def test_fetches_of_manifest_files_carry_the_version_and_md5_and_plain_ones_do_not():
    listing = manifest_listing("p", {"a": Version("e1", manifest())}) + [RemoteObject("p/plain/q.py", MD5, 3, 0)]
    p = plan(listing, "p/", {}, {})
    assert {f.rel: (f.version_id, f.md5) for f in p.fetches} == {
        "a/lib/y.py": ("v1", "f" * 32), "a/x.py": ("v0", "f" * 32), "plain/q.py": (None, "")}


def test_a_held_repo_is_neither_fetched_nor_deleted():
    listing = [RemoteObject("p/a/x.py", MD5, 3, 0), RemoteObject("p/b/y.py", MD5, 3, 0)]
    local = {"a/old.py": LocalFile(1, 1), "b/old.py": LocalFile(1, 1)}
    p = plan(listing, "p/", {}, local, held=frozenset({"a"}))
    assert [f.rel for f in p.fetches] == ["b/y.py"]
    assert p.deletes == ("b/old.py",)
    assert p.skipped == {"held": 1}

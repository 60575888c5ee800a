import json

import pytest

from objsync.layout import check_repo_name, history_key, manifest_key, repo_prefix
from objsync.manifest import FileEntry, Manifest, ManifestError, Origin, content_id

MD5 = "0123456789abcdef0123456789abcdef"


def sample(**changes):
    fields = dict(repo="team-dags",
                  files=(FileEntry("dags/b.py", 5, MD5 + "-2", "f" * 32, "v9"), FileEntry("a.py", 0, MD5, MD5)),
                  commit="9fceb02d0ae598e95dc970b74767f19372d61af8", created="2024-05-01T12:00:00Z",
                  objsync_version="0.1.0", promoted_from=Origin("dev", "s3://b/p", "0123456789abcdef"))
    return Manifest(**(fields | changes))


def doc(**changes):
    d = sample().as_dict()
    d.update(changes)
    return json.dumps(d)


def test_round_trip_and_sorted_files():
    m = sample()
    assert [f.path for f in m.files] == ["a.py", "dags/b.py"]
    assert Manifest.from_json(m.to_json()) == m
    assert Manifest.from_json(m.to_json()).id == m.id
    assert m.total_bytes == 5


def test_id_depends_on_content_only():
    m = sample()
    same_bytes = sample(commit=None, created="2030-01-01T00:00:00Z", promoted_from=None,
                        files=(FileEntry("a.py", 0, "x", MD5), FileEntry("dags/b.py", 5, "y", "f" * 32)))
    assert same_bytes.id == m.id and len(m.id) == 16
    assert sample(files=(FileEntry("a.py", 0, MD5, "e" * 32),)).id != m.id
    assert sample(files=(FileEntry("c.py", 0, MD5, MD5),)).id != sample(files=(FileEntry("a.py", 0, MD5, MD5),)).id
    assert content_id(()) == sample(files=()).id


@pytest.mark.parametrize("path", ["../x.py", "/abs.py", "a//b.py", ".objsync/x", "a\\b.py", "tab\t.py", ""])
def test_unsafe_paths_are_refused(path):
    with pytest.raises(ManifestError, match="unsafe"):
        sample(files=(FileEntry(path, 1, MD5, MD5),))


@pytest.mark.parametrize("entry, message", [
    (FileEntry("a.py", -1, MD5, MD5), "size"),
    (FileEntry("a.py", True, MD5, MD5), "size"),
    (FileEntry("a.py", 1.0, MD5, MD5), "size"),
    (FileEntry("a.py", 1, MD5, MD5.upper()), "md5"),
    (FileEntry("a.py", 1, MD5, MD5[:31]), "md5"),
    (FileEntry("a.py", 1, "", MD5), "etag"),
    (FileEntry("a.py", 1, '"quoted"', MD5), "etag"),
    (FileEntry("a.py", 1, MD5, MD5, ""), "version_id"),
])
def test_bad_file_fields_are_refused(entry, message):
    with pytest.raises(ManifestError, match=message):
        sample(files=(entry,))


@pytest.mark.parametrize("changes, message", [
    (dict(repo=".objsync"), "repo"),
    (dict(repo="a/b"), "repo"),
    (dict(commit="HEAD"), "commit"),
    (dict(created="2024-05-01 12:00"), "created"),
    (dict(objsync_version=""), "objsync_version"),
    (dict(promoted_from=Origin("dev", "not-a-url", "0123456789abcdef")), "promoted_from.url"),
    (dict(promoted_from=Origin("dev", "s3://b/p", "short")), "promoted_from.manifest_id"),
    (dict(files=(FileEntry("a.py", 1, MD5, MD5), FileEntry("a.py", 2, MD5, MD5))), "twice"),
])
def test_bad_records_are_refused(changes, message):
    with pytest.raises(ManifestError, match=message):
        sample(**changes)


@pytest.mark.parametrize("text, message", [
    ("not json", "not a JSON document"),
    ("[]", "must be a JSON object"),
    (doc(schema=5), "schema 5 is not supported"),
    (doc(schema=2), "missing source_url"),
    (doc(source_url="https://github.com/a/b"), "unknown source_url"),
    (doc(schema=True), "schema True is not supported"),
    (doc(extra=1), "unknown extra"),
    (doc(id="0" * 16), "does not match"),
    (json.dumps({k: v for k, v in sample().as_dict().items() if k != "commit"}), "missing commit"),
    (doc(files=[{"path": "a.py", "size": 1, "etag": MD5, "md5": MD5}]), r"files\[0\]: missing version_id"),
    (doc(files="a.py"), "must be a list"),
    (doc(promoted_from={"env": "dev"}), "promoted_from: missing url, manifest_id"),
    ('{"schema": 1, "schema": 1}', "appears twice"),
])
def test_from_json_is_strict(text, message):
    with pytest.raises(ManifestError, match=message):
        Manifest.from_json(text)


def test_from_json_requires_sorted_files():
    d = sample().as_dict()
    d["files"].reverse()
    with pytest.raises(ManifestError, match="sorted"):
        Manifest.from_json(json.dumps(d))


def test_layout_keys_and_repo_names():
    assert repo_prefix("dags", "a") == "dags/a/" and repo_prefix("", "a") == "a/" and repo_prefix("p/", "a") == "p/a/"
    assert manifest_key("dags", "a") == "dags/.objsync/manifests/a.json"
    assert history_key("dags", "a", "0123456789abcdef") == "dags/.objsync/history/a/0123456789abcdef.json"
    for good in ("a", "A1", "team-dags", "x_y.z", "9" * 100):
        assert check_repo_name(good) == good
    for bad in ("", ".objsync", ".hidden", "-x", "a b", "a/b", "é", "9" * 101, "..", None):
        with pytest.raises(ValueError, match="not a usable repo name"):
            check_repo_name(bad)


def test_schema_2_carries_the_repo_web_page_and_links_a_commit():
    m = sample(source_url="https://github.com/acme/dags", commit="9fceb02d0ae598e95dc970b74767f19372d61af8")
    assert m.schema == 2 and Manifest.from_json(m.to_json()) == m
    assert m.commit_url() == "https://github.com/acme/dags/commit/9fceb02d0ae598e95dc970b74767f19372d61af8"
    assert sample().schema == 1 and "source_url" not in sample().as_dict()  # older readers still read it
    gitlab = sample(source_url="https://gitlab.example.com/g/dags/", commit="abcdef1")
    assert gitlab.commit_url() == "https://gitlab.example.com/g/dags/-/commit/abcdef1"
    assert sample(source_url="https://bitbucket.org/a/b", commit="abcdef1").commit_url().endswith("/commits/abcdef1")
    for bad in ("javascript:alert(1)", "https://x y", "ftp://h/p"):
        with pytest.raises(ManifestError, match="source_url"):
            sample(source_url=bad)

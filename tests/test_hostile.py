"""Hostile keys, end to end: one pull meets them all, and nothing outside LOCAL_DIR changes.

Keys that SeaweedFS stores are uploaded for real; the ones it refuses or rewrites (`..`, `//`, NUL,
over-long names, bytes that are not UTF-8) are added to its real listing by a proxy, as a hostile
or buggy server would send them.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import uuid
from pathlib import Path

import pytest
from listproxy import ListProxy, url_encoded
from support import pull, put, tree

ESCAPE = f"objsync-hostile-{uuid.uuid4().hex[:12]}"  # a name that must never appear in /tmp

# Stored in SeaweedFS: class -> (key, outcome). Outcome "reject" must be named in errors and the
# log, "skip" is silently not mirrored, and any other outcome is the path it must be written at.
REAL = {
    "plain file": ("p/ok.py", "ok.py"),
    "nested file": ("p/team/b.py", "team/b.py"),
    "C0 control character": ("p/ctl\x01.py", "reject"),
    "newline": ("p/nl\n.py", "reject"),
    "terminal escape sequence": ("p/esc\x1b[2J.py", "reject"),
    "DEL": ("p/del\x7f.py", "reject"),
    "C1 control character (NEL)": ("p/c1\x85.py", "reject"),
    "C1 CSI (terminal control)": ("p/csi\x9b2J.py", "reject"),
    "U+FFFD, the mark of undecodable bytes": ("p/\ufffd.py", "reject"),
    "NFC form of a name": ("p/caf\u00e9.py", "caf\u00e9.py"),
    "NFD twin of that name": ("p/cafe\u0301.py", "reject"),
    "file that is also a folder": ("p/ff/a", "reject"),
    "file below that folder": ("p/ff/a/b", "ff/a/b"),
    "objsync's own metadata": ("p/.objsync/history/r/0123456789abcdef.json", "skip"),
    "key aimed at objsync's cache": ("p/.objsync/cache/cache.db", "skip"),
    "key aimed at objsync's lock": ("p/.objsync/lock", "skip"),
    "key aimed at objsync's temp folder": ("p/.objsync/tmp/1-1.part", "skip"),
    "sibling of the prefix": ("p_old/x.py", "skip"),
    "full-width dots (not '..')": ("p/\uff0e\uff0e/x.py", "\uff0e\uff0e/x.py"),
    "percent-encoded dots (never decoded twice)": ("p/%2e%2e/x.py", "%2e%2e/x.py"),
    "division slash (not '/')": ("p/\u2215etc\u2215passwd", "\u2215etc\u2215passwd"),
    "right-to-left override": ("p/rlo\u202eyp.txt", "rlo\u202eyp.txt"),
    "option-like name": ("p/-rf", "-rf"),
    "temp-file suffix": ("p/x.part", "x.part"),
    "space and plus": ("p/sp ace+plus.py", "sp ace+plus.py"),
    "drive-letter look-alike": ("p/C:/x.py", "C:/x.py"),
    "key over a local symlink to a file outside": ("p/link_file.py", "link_file.py"),
    "key through a local symlinked folder outside": ("p/linkdir/x.py", "linkdir/x.py"),
    "key over a local hard link to a file outside": ("p/hard.py", "hard.py"),
    "folder of a file listed after it": ("p/rev/x/y.py", "rev/x/y.py"),
    "key listed twice, differently": ("p/twice.py", "reject"),
}

# Added by the proxy: class -> (url-encoded key as it appears in the listing, decoded key, outcome).
INJECTED = {
    "'..' segment": (url_encoded(b"p/../escape.py"), "p/../escape.py", "reject"),
    "'../..' segments": (url_encoded(b"p/../../escape.py"), "p/../../escape.py", "reject"),
    "'..' below a folder": (url_encoded(b"p/a/../../escape.py"), "p/a/../../escape.py", "reject"),
    "bare '..'": (url_encoded(b"p/.."), "p/..", "reject"),
    "'./' segment": (url_encoded(b"p/./dot.py"), "p/./dot.py", "reject"),
    "'.' below a folder": (url_encoded(b"p/sub/./x.py"), "p/sub/./x.py", "reject"),
    "leading '/' after the prefix": (url_encoded(f"p//tmp/{ESCAPE}/abs.py".encode()),
                                     f"p//tmp/{ESCAPE}/abs.py", "reject"),
    "absolute key outside the prefix": (url_encoded(f"/tmp/{ESCAPE}/abs.py".encode()),
                                        f"/tmp/{ESCAPE}/abs.py", "reject"),
    "'a//b'": (url_encoded(b"p/a//b.py"), "p/a//b.py", "reject"),
    "backslash": (url_encoded(b"p/back\\slash.py"), "p/back\\slash.py", "reject"),
    "backslash traversal": (url_encoded(b"p/..\\..\\escape.py"), "p/..\\..\\escape.py", "reject"),
    "percent-encoded '/' and '..'": ("p/a%2F..%2F..%2Fescape.py", "p/a/../../escape.py", "reject"),
    "NUL": (url_encoded(b"p/nul\x00.py"), "p/nul\x00.py", "reject"),
    "name over 255 bytes": (url_encoded(b"p/" + b"n" * 256), "p/" + "n" * 256, "reject"),
    "path over 4095 bytes": (url_encoded(b"p/" + b"/".join([b"d" * 250] * 17)),
                             "p/" + "/".join(["d" * 250] * 17), "reject"),
    "invalid UTF-8": (url_encoded(b"p/bad\xff.py"), "p/bad\ufffd.py", "reject"),
    "overlong UTF-8 '..'": (url_encoded(b"p/\xc0\xae\xc0\xae/x.py"), "p/\ufffd\ufffd\ufffd\ufffd/x.py", "reject"),
    "UTF-8-encoded surrogate": (url_encoded(b"p/\xed\xa0\x80.py"), "p/\ufffd\ufffd\ufffd.py", "reject"),
    "sibling of the prefix, listed anyway": (url_encoded(b"p_old/evil.py"), "p_old/evil.py", "reject"),
    "the prefix itself, without '/'": (url_encoded(b"p"), "p", "reject"),
    "'..' inside objsync's metadata": (url_encoded(b"p/.objsync/../../escape.py"),
                                       "p/.objsync/../../escape.py", "reject"),
    "file listed after its own folder": (url_encoded(b"p/rev/x"), "p/rev/x", "reject"),
    "second listing of a key, other ETag": (url_encoded(b"p/twice.py"), "p/twice.py", "reject"),
    "second listing of a key, same ETag": (url_encoded(b"p/ok.py"), "p/ok.py", "skip"),
}

BODY = {"p/ok.py": b"ok = 1\n", "p/twice.py": b"first\n"}
INJECTED_BODY = {"p/ok.py": BODY["p/ok.py"], "p/twice.py": b"second, other bytes\n"}


def body_of(key: str) -> bytes:
    return BODY.get(key, hashlib.sha1(key.encode()).hexdigest().encode() + b"\n")


def snapshot(top: Path, skip: Path) -> dict[str, tuple]:
    """Type, bytes, mode and mtime of everything below `top`, by lstat, leaving out `skip`."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(top):
        if Path(dirpath) == skip or skip in Path(dirpath).parents:
            continue
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            if path == skip:
                continue
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                content = os.readlink(path).encode()
            elif stat.S_ISREG(st.st_mode):
                content = path.read_bytes()
            else:
                content = b""
            out[str(path.relative_to(top))] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode),
                                               st.st_mtime_ns, content)
    return out


@pytest.fixture
def sandbox(tmp_path):
    """tmp_path with sentinels outside LOCAL_DIR (tmp_path/sandbox/d) and local links that point at them."""
    box = tmp_path / "sandbox"
    outside = box / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "dir2").mkdir()
    for rel, data in {"precious.txt": b"precious", "precious2.txt": b"precious too", "hard.txt": b"hard",
                      "dir/inner.txt": b"inner", "dir2/inner.txt": b"inner too", "../escape.py": b"sentinel",
                      "../p_old/x.py": b"sibling sentinel", "../../escape.py": b"outer sentinel"}.items():
        path = outside / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))
    d = box / "d"
    d.mkdir()
    (d / "link_file.py").symlink_to(outside / "precious.txt")
    (d / "linkdir").symlink_to(outside / "dir")
    (d / "stray_link.py").symlink_to(outside / "precious2.txt")  # not in the bucket: the link goes
    (d / "stray_dirlink").symlink_to(outside / "dir2")
    os.link(outside / "hard.txt", d / "hard.py")
    return tmp_path, d


def test_one_pull_meets_every_hostile_key_and_writes_nothing_outside(s3_client, bucket, seaweed, sandbox, aws_env):
    top, d = sandbox
    for key, _ in REAL.values():
        put(s3_client, bucket, {key: body_of(key)})
    before = snapshot(top, skip=d)
    host, port = seaweed.endpoint_url.rsplit("//", 1)[1].split(":")
    proxy = ListProxy((host, int(port)), bucket, {enc: INJECTED_BODY.get(dec, body_of(dec))
                                                  for enc, dec, _ in INJECTED.values()}, prefix="p/")
    try:
        run = pull(f"s3://{bucket}/p", d, "--endpoint-url", proxy.url, env=aws_env)
        again = pull(f"s3://{bucket}/p", d, "--endpoint-url", proxy.url, env=aws_env)
    finally:
        proxy.close()
    assert proxy.listings == 4  # each pull: its top level (no manifests there), then every object
    # The proxy would serve every added key; objsync asks only for the one it accepts, the duplicate of ok.py.
    assert set(proxy.served) <= {b"p/ok.py"}
    assert run.rc == 1, run.err
    assert "Traceback" not in run.err

    expected_rejects = {key for key, outcome in REAL.values() if outcome == "reject"}
    expected_rejects |= {dec for _, dec, outcome in INJECTED.values() if outcome == "reject"}
    errors = {e["key"]: e["error"] for e in run.summary["errors"]}
    assert set(errors) == expected_rejects
    logged = {rec["key"] for rec in map(json.loads, run.err.splitlines()) if rec.get("level") == "error"}
    assert logged == expected_rejects  # each one also named in the log
    assert len(REAL) + len(INJECTED) >= 50 and len(expected_rejects) >= 30

    written = {outcome: body_of(key) for key, outcome in REAL.values() if outcome not in ("reject", "skip")}
    assert tree(d) == written  # stray links removed, links and the hard link replaced by files
    for rel in ("link_file.py", "linkdir", "hard.py"):
        assert not (d / rel).is_symlink()
    assert (d / "hard.py").stat().st_nlink == 1

    assert snapshot(top, skip=d) == before  # nothing outside LOCAL_DIR changed, nothing new appeared
    assert not Path("/tmp", ESCAPE).exists() and not Path("/", ESCAPE).exists()
    assert (d / ".objsync/lock").read_text().isdigit()
    assert list((d / ".objsync/tmp").iterdir()) == []

    # The next pass rejects the same keys, downloads nothing and still touches nothing outside.
    assert again.rc == 1
    assert {e["key"] for e in again.summary["errors"]} == expected_rejects
    assert (again.summary["fetched"], again.summary["verified"], again.summary["deleted"]) == (0, 0, 0)
    assert snapshot(top, skip=d) == before


def test_a_symlinked_state_folder_is_refused_before_anything_is_written(s3_client, bucket, tmp_path, aws_env):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_bytes(b"keep")
    put(s3_client, bucket, {"p/a.py": b"a"})
    for link in (".objsync", ".objsync/tmp", ".objsync/cache", ".objsync/lock"):
        d = tmp_path / link.replace("/", "_")
        (d / link).parent.mkdir(parents=True, exist_ok=True)
        (d / link).symlink_to(outside / "keep.txt" if link.endswith("lock") else outside)
        run = pull(f"s3://{bucket}/p", d, env=aws_env)
        assert run.rc == 1 and "Traceback" not in run.err
        assert f"{d / link} is a symlink" in run.err and "remove it" in run.err
        assert [p.name for p in outside.iterdir()] == ["keep.txt"] and tree(d) == {}
        assert (outside / "keep.txt").read_bytes() == b"keep"

import hashlib
import os

import pytest

from objsync.paths import Filter
from objsync.push import source
from objsync.push.source import compile_problem, compile_problems, is_dropping, scan_source
from objsync.s3.etag import MIB, EtagHasher, part_size


def write(root, files):
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def test_small_file_etag_is_its_md5():
    h = EtagHasher(5)
    h.update(b"hello")
    assert h.etag() == h.md5.hexdigest() == hashlib.md5(b"hello").hexdigest()


def test_multipart_etag_matches_s3s_formula_across_odd_chunks():
    data = os.urandom(17 * MIB + 3)
    parts = [hashlib.md5(data[i:i + 8 * MIB]).digest() for i in range(0, len(data), 8 * MIB)]
    expected = hashlib.md5(b"".join(parts)).hexdigest() + "-3"
    h = EtagHasher(len(data))
    for i in range(0, len(data), 999_999):  # chunks that straddle part boundaries
        h.update(data[i:i + 999_999])
    assert h.etag() == expected and h.md5.hexdigest() == hashlib.md5(data).hexdigest()


def test_exact_multiple_of_the_part_size_and_the_threshold():
    data = b"x" * (16 * MIB)
    h = EtagHasher(len(data))
    h.update(data)
    assert h.etag().endswith("-2")
    assert EtagHasher(8 * MIB).part == 8 * MIB and EtagHasher(8 * MIB - 1).part == 0


def test_part_size_grows_like_boto3s_past_ten_thousand_parts():
    assert part_size(100 * MIB) == 8 * MIB
    assert part_size(10_000 * 8 * MIB + 1) == 16 * MIB


@pytest.mark.parametrize("name, is_dir, dropped", [
    ("__pycache__", True, True), (".git", True, True), (".git", False, True), ("a.pyc", False, True),
    ("a.py~", False, True), (".#a.py", False, True), (".a.py.swp", False, True), (".DS_Store", False, True),
    ("a.py", False, False), (".airflowignore", False, False), ("cache", True, False), ("pyc", False, False),
])
def test_droppings(name, is_dir, dropped):
    assert is_dropping(name, is_dir) == dropped


def test_scan_skips_droppings_and_excludes_and_hashes(tmp_path):
    root = write(tmp_path / "wf", {
        "a.py": b"a = 1\n", "sub/b.sql": b"select 1", ".airflowignore": b"x\n",
        "__pycache__/a.cpython-311.pyc": b"\0", "sub/b.sql~": b"old", ".git/config": b"[core]",
        "tests/test_a.py": b"def test(): pass\n", "sub/tests/keep.py": b"k = 1\n"})
    scan = scan_source(root, Filter(excludes=("tests/**",)))
    assert [f.rel for f in scan.files] == [".airflowignore", "a.py", "sub/b.sql", "sub/tests/keep.py"]
    assert scan.files[1].md5 == hashlib.md5(b"a = 1\n").hexdigest() == scan.files[1].etag
    assert scan.files[1].size == 6 and scan.problems == ()
    assert scan.skipped == {"build or editor file": 3, "excluded": 1}


def test_scan_refuses_unsafe_names_and_special_files(tmp_path):
    root = write(tmp_path / "wf", {"ok.py": b"", "back\\slash.py": b"", "ctl\x01.py": b"",
                                   ".objsync/state": b""})
    os.mkfifo(root / "pipe")
    scan = scan_source(root)
    reasons = {p.rel: p.reason for p in scan.problems}
    assert set(reasons) == {"back\\slash.py", "ctl\x01.py", ".objsync/state", "pipe"}
    assert "backslash" in reasons["back\\slash.py"] and "not a regular file" in reasons["pipe"]
    assert all("--exclude" in r for r in reasons.values())
    assert [f.rel for f in scan.files] == ["ok.py"]


def test_symlinks_inside_are_followed_others_refused(tmp_path):
    root = write(tmp_path / "wf", {"real.py": b"r = 1\n", "dir/x.py": b""})
    write(tmp_path, {"secret.txt": b"do not publish"})
    (root / "link.py").symlink_to("real.py")
    (root / "out.txt").symlink_to(tmp_path / "secret.txt")
    (root / "dirlink").symlink_to("dir")
    (root / "dangling").symlink_to("nothing")
    scan = scan_source(root)
    reasons = {p.rel: p.reason for p in scan.problems}
    assert "outside the source folder" in reasons["out.txt"] and "a folder" in reasons["dirlink"]
    assert set(reasons) == {"out.txt", "dirlink", "dangling"}
    link = next(f for f in scan.files if f.rel == "link.py")
    assert link.md5 == hashlib.md5(b"r = 1\n").hexdigest()


def test_unicode_lookalike_names_are_refused(tmp_path):
    root = write(tmp_path / "wf", {"caf\u00e9.py": b"", "cafe\u0301.py": b""})
    scan = scan_source(root)
    assert len(scan.files) == 1 and "Unicode normalization" in scan.problems[0].reason


def test_compile_problem_reports_the_line():
    p = compile_problem(b"import os\n\nif True\n    pass\n", "dags/x.py")
    assert p.line == 3 and "--no-compile-check" in p.reason and p.where("wf") == "wf/dags/x.py:3"
    assert compile_problem(b"x = '\\d'\n", "warns.py") is None  # a SyntaxWarning does not block
    assert compile_problem(b"def f():\n  return 1\n", "ok.py") is None
    assert compile_problem(b"return 1\n", "outside.py").line == 1  # found by the compiler, not the parser
    assert "null bytes" in compile_problem(b"x = 1\0\n", "nul.py").reason


def test_compile_problems_in_worker_processes(tmp_path, monkeypatch):
    root = write(tmp_path / "wf", {f"ok{i}.py": b"x = 1\n" for i in range(20)} | {"bad.py": b"x = (\n", "n.txt": b"("})
    files = scan_source(root).files
    monkeypatch.setattr(source, "_PARALLEL_COMPILE_BYTES", 0)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    found = compile_problems(files)
    assert [(p.rel, p.line) for p in found] == [("bad.py", 1)]

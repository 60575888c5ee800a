"""The destination check: every difference from the bucket's tree is caught and named."""

import hashlib
import os

from objsync.bench.presets import Expect
from objsync.bench.verify import check_dest, pick_hashed


def expect(data: bytes) -> Expect:
    return Expect(len(data), hashlib.md5(data).hexdigest())


def make(root, files):
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def test_exact_copy_passes_and_tool_state_is_ignored(tmp_path):
    files = {"a.py": b"one", "d/e/b.sql": b"two"}
    make(tmp_path, files | {".objsync/cache/x": b"state"})
    check = check_dest(tmp_path, {k: expect(v) for k, v in files.items()}, ignore=(".objsync",))
    assert check.ok and check.mode == "full" and check.hashed == 2


def test_every_kind_of_difference_is_reported(tmp_path):
    model = {"same.py": expect(b"abc"), "gone.py": expect(b"x"), "short.py": expect(b"12345"),
             "flipped.py": expect(b"abc")}
    make(tmp_path, {"same.py": b"abc", "short.py": b"123", "flipped.py": b"abd", "extra.py": b"?"})
    os.symlink("same.py", tmp_path / "link.py")
    check = check_dest(tmp_path, model)
    assert not check.ok
    assert set(check.problems) == {"not a regular file: link.py", "missing: gone.py", "unexpected: extra.py",
                                   "short.py: 3 bytes, expected 5", "flipped.py: content differs (MD5)"}


def test_sample_mode_hashes_a_seeded_sample_plus_big_files():
    model = {f"f{i:05d}": Expect(10, "0" * 32) for i in range(30_000)} | {"big": Expect(2 << 20, "1" * 32)}
    mode, chosen = pick_hashed(model, "auto", seed=3)
    assert mode == f"sample:{len(chosen)}" and "big" in chosen and 1000 <= len(chosen) <= 1001
    assert pick_hashed(model, "auto", seed=3) == (mode, chosen)
    assert pick_hashed(model, "full", seed=3)[0] == "full"

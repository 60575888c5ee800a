"""`--atomic` against a real SeaweedFS: folders published as whole trees behind symlinks, kept, then collected."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

from support import pull, put
from test_daemon import Daemon, wait_for
from test_manifest_mode import REPO_A, REPO_B, expected, forged, publish_repo

STORE = ".objsync/snapshots"


def tree(root: Path) -> dict[str, bytes]:
    """Every file below root as a reader sees it, through the folders' symlinks (objsync's own folder aside)."""
    out = {}
    for folder, dirs, files in os.walk(root, followlinks=True):
        rel_dir = os.path.relpath(folder, root)
        if rel_dir == ".objsync" or rel_dir.startswith(".objsync/"):
            continue
        for name in files:
            rel = os.path.normpath(os.path.join(rel_dir, name))
            out[rel] = Path(folder, name).read_bytes()
    return out


def target(d: Path, top: str) -> str:
    """The tree `d/top` shows, as its link says."""
    link = os.readlink(d / top)
    assert link.startswith(f"{STORE}/{top}/"), link
    return link


def snapshots(d: Path, top: str) -> list[str]:
    return sorted(p.name for p in (d / STORE / top).iterdir() if not p.name.endswith(".retired"))


def test_folders_are_symlinks_to_trees_and_unchanged_files_are_hard_linked(seaweed, s3_client, bucket, tmp_path,
                                                                          aws_env):
    m = publish_repo(seaweed, bucket, "a", REPO_A, tmp_path)
    publish_repo(seaweed, bucket, "b", REPO_B, tmp_path)
    put(s3_client, bucket, {"dags/plain/p.py": b"plain", "dags/.airflowignore": b"x/\n"})
    d = tmp_path / "d"
    run = pull(f"s3://{bucket}/dags", d, "--atomic", env=aws_env)
    assert run.rc == 0, run.err
    assert tree(d) == expected(a=REPO_A, b=REPO_B) | {"plain/p.py": b"plain", ".airflowignore": b"x/\n"}
    first = target(d, "a")
    assert first.startswith(f"{STORE}/a/{m.id}-") and (d / "plain").is_symlink()
    assert not (d / ".airflowignore").is_symlink()  # top-level files stay files
    assert (d / ".objsync/.airflowignore").read_text() == "snapshots\ntmp\ncache\n"

    again = pull(f"s3://{bucket}/dags", d, "--atomic", env=aws_env)
    assert again.summary["fetched"] == 0 and target(d, "a") == first

    v2 = {"dag_a.py": b"A = 2\n", "lib/helper.py": REPO_A["lib/helper.py"], "lib/more.py": b"m\n"}
    publish_repo(seaweed, bucket, "a", v2, tmp_path)
    run = pull(f"s3://{bucket}/dags", d, "--atomic", env=aws_env)
    assert run.rc == 0, run.err
    assert (run.summary["fetched"], run.summary["deleted"]) == (2, 0)
    second = target(d, "a")
    assert second != first and tree(d) == expected(a=v2, b=REPO_B) | {"plain/p.py": b"plain",
                                                                       ".airflowignore": b"x/\n"}
    # The unchanged helper is the same inode in both trees; the old tree is intact and marked retired.
    assert (d / first / "lib/helper.py").stat().st_ino == (d / second / "lib/helper.py").stat().st_ino
    assert (d / first / "dag_a.py").read_bytes() == REPO_A["dag_a.py"]
    assert (d / (first + ".retired")).exists()

    publish_repo(seaweed, bucket, "a", {"dag_a.py": b"A = 3\n"}, tmp_path)
    run = pull(f"s3://{bucket}/dags", d, "--atomic", env=aws_env)
    assert run.rc == 0 and run.summary["deleted"] == 2
    assert tree(d)["a/dag_a.py"] == b"A = 3\n" and "a/lib/more.py" not in tree(d)


def test_old_trees_are_collected_after_keep_snapshots(seaweed, bucket, tmp_path, aws_env):
    publish_repo(seaweed, bucket, "a", REPO_A, tmp_path)
    d = tmp_path / "d"
    assert pull(f"s3://{bucket}/dags", d, "--atomic", "--keep-snapshots", "1s", env=aws_env).rc == 0
    first = Path(target(d, "a")).name
    publish_repo(seaweed, bucket, "a", REPO_A | {"new.py": b"n\n"}, tmp_path)
    assert pull(f"s3://{bucket}/dags", d, "--atomic", "--keep-snapshots", "1s", env=aws_env).rc == 0
    second = Path(target(d, "a")).name
    assert snapshots(d, "a") == sorted([first, second])
    time.sleep(1.2)
    publish_repo(seaweed, bucket, "a", REPO_A | {"new.py": b"n2\n"}, tmp_path)
    assert pull(f"s3://{bucket}/dags", d, "--atomic", "--keep-snapshots", "1s", env=aws_env).rc == 0
    third = Path(target(d, "a")).name
    assert snapshots(d, "a") == sorted([second, third])  # the first was retired over a second ago
    assert tree(d)["a/new.py"] == b"n2\n"


def test_failed_fetch_keeps_the_current_tree(seaweed, s3_client, bucket, tmp_path, aws_env):
    publish_repo(seaweed, bucket, "a", REPO_A, tmp_path)
    d = tmp_path / "d"
    assert pull(f"s3://{bucket}/dags", d, "--atomic", env=aws_env).rc == 0
    before = target(d, "a")
    m = publish_repo(seaweed, bucket, "a", REPO_A | {"dag_a.py": b"A = 2\n", "z.py": b"z\n"}, tmp_path)
    bad = forged(m, md5="0" * 32)  # dag_a.py cannot pass its check; z.py could
    put(s3_client, bucket, {"dags/.objsync/manifests/a.json": bad})
    run = pull(f"s3://{bucket}/dags", d, "--atomic", env=aws_env)
    assert run.rc == 1 and run.summary["errors"][0]["key"] == "dags/a/dag_a.py"
    assert target(d, "a") == before and tree(d) == expected(a=REPO_A)
    assert not [p for p in (d / STORE / "a").iterdir() if p.name.startswith(".")]


def test_switching_to_atomic_and_back(seaweed, s3_client, bucket, tmp_path, aws_env):
    publish_repo(seaweed, bucket, "a", REPO_A, tmp_path)
    publish_repo(seaweed, bucket, "b", REPO_B, tmp_path)
    d = tmp_path / "d"
    assert pull(f"s3://{bucket}/dags", d, env=aws_env).rc == 0
    assert (d / "a").is_dir() and not (d / "a").is_symlink()
    publish_repo(seaweed, bucket, "a", REPO_A | {"new.py": b"n\n"}, tmp_path)
    run = pull(f"s3://{bucket}/dags", d, "--atomic", env=aws_env)
    assert run.rc == 0 and run.summary["fetched"] == 1, run.err
    assert (d / "a").is_symlink() and not (d / "b").is_symlink()  # b did not change, so it stays a folder
    legacy = [p.name for p in (d / STORE / "a").iterdir() if p.name.startswith("legacy-")]
    assert len(legacy) == 2  # the old folder and its retirement marker
    assert tree(d) == expected(a=REPO_A | {"new.py": b"n\n"}, b=REPO_B)

    publish_repo(seaweed, bucket, "a", REPO_A, tmp_path)
    run = pull(f"s3://{bucket}/dags", d, env=aws_env)
    assert run.rc == 0, run.err
    assert not (d / "a").is_symlink() and tree(d) == expected(a=REPO_A, b=REPO_B)


def test_a_removed_repo_goes_in_one_step(seaweed, s3_client, bucket, tmp_path, aws_env):
    publish_repo(seaweed, bucket, "a", REPO_A, tmp_path)
    publish_repo(seaweed, bucket, "b", {f"d{i}.py": b"%d" % i for i in range(10)}, tmp_path)
    d = tmp_path / "d"
    assert pull(f"s3://{bucket}/dags", d, "--atomic", env=aws_env).rc == 0
    gone = target(d, "a")
    s3_client.delete_object(Bucket=bucket, Key="dags/.objsync/manifests/a.json")
    for rel in REPO_A:
        s3_client.delete_object(Bucket=bucket, Key=f"dags/a/{rel}")
    run = pull(f"s3://{bucket}/dags", d, "--atomic", env=aws_env)
    assert run.rc == 0 and run.summary["deleted"] == 2, run.err
    assert not os.path.lexists(d / "a") and (d / gone).is_dir() and (d / (gone + ".retired")).exists()


def test_a_reader_never_sees_two_versions_of_a_repo(seaweed, bucket, tmp_path, aws_env):
    def version(n: int) -> dict[str, bytes]:
        return {"dag.py": b"VERSION = %d\n" % n, "lib/helper.py": b"VERSION = %d\n" % n,
                **{f"pad/{i}.py": b"# %d\n" % n * 200 for i in range(20)}}

    publish_repo(seaweed, bucket, "a", version(0), tmp_path)
    d = tmp_path / "d"
    mixes, reads, stop = [], [0], threading.Event()

    def reader() -> None:
        while not stop.is_set():
            try:
                root = os.path.realpath(d / "a")  # one lookup of the link, as a walk into the folder does
                seen = {Path(root, rel).read_bytes() for rel in ("dag.py", "lib/helper.py", "pad/19.py")}
            except FileNotFoundError:
                continue
            reads[0] += 1
            if len({s.splitlines()[0][-1:] for s in seen}) > 1:
                mixes.append(seen)

    with Daemon(f"s3://{bucket}/dags", d, aws_env, "--atomic", interval="100ms") as daemon:
        wait_for(lambda: daemon.health() == (200, "GOOD"), what="healthy")
        thread = threading.Thread(target=reader)
        thread.start()
        try:
            for n in range(1, 6):
                publish_repo(seaweed, bucket, "a", version(n), tmp_path)
                wait_for(lambda: (d / "a/dag.py").read_bytes() == b"VERSION = %d\n" % n, what=f"version {n}")
        finally:
            stop.set()
            thread.join()
        assert daemon.stop() == 0
    assert reads[0] > 50 and mixes == []


def test_a_quiet_rescan_collects_retired_trees(seaweed, bucket, tmp_path, aws_env):
    publish_repo(seaweed, bucket, "a", REPO_A, tmp_path)
    d = tmp_path / "d"
    with Daemon(f"s3://{bucket}/dags", d, aws_env, "--atomic", "--keep-snapshots", "1s", "--rescan-every", "1h",
                interval="100ms") as daemon:
        wait_for(lambda: daemon.health() == (200, "GOOD"), what="healthy")
        first = Path(target(d, "a")).name
        publish_repo(seaweed, bucket, "a", REPO_A | {"new.py": b"n\n"}, tmp_path)
        wait_for(lambda: Path(target(d, "a")).name != first, what="the new tree")
        time.sleep(1.5)
        assert first in snapshots(d, "a")  # quiet polls look at nothing, so the retired tree is still there
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: first not in snapshots(d, "a"), timeout=10, what="the rescan to collect it")
        assert daemon.stop() == 0

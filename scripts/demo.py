"""The body of scripts/demo: start SeaweedFS, publish examples/workflow, pull it twice, show it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import boto3

from objsync.seaweed import SeaweedFS

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".demo"
BUCKET = "airflow-dags"


def sh(*args: str, env: dict[str, str]) -> None:
    print("$", " ".join(args), flush=True)
    subprocess.run(args, env=env, check=True)


def main() -> int:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir()
    with SeaweedFS(WORK / "seaweedfs") as server:
        env = dict(os.environ) | server.env()
        env.pop("AWS_PROFILE", None)
        print(f"SeaweedFS S3 is up at {server.endpoint_url}\n")
        s3 = boto3.client("s3", endpoint_url=server.endpoint_url, region_name="us-east-1",
                          aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key)
        s3.create_bucket(Bucket=BUCKET)
        source = ROOT / "examples" / "workflow"
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            key = f"dags/example-repo/{path.relative_to(source).as_posix()}"
            s3.upload_file(str(path), BUCKET, key)
            print(f"published s3://{BUCKET}/{key}")
        print()
        dags = WORK / "dags"
        objsync = str(Path(sys.executable).parent / "objsync")
        sh(objsync, "pull", "--once", "--json", f"s3://{BUCKET}/dags", str(dags), env=env)
        print("\nThe DAG folder now holds:")
        for path in sorted(dags.rglob("*")):
            rel = path.relative_to(dags)
            if rel.parts[0] != ".objsync" and path.is_file():
                print(f"  {rel}  ({path.stat().st_size} bytes)")
        print("\nA second pass finds nothing to do (one stat per file, no downloads):")
        sh(objsync, "pull", "--once", "--json", f"s3://{BUCKET}/dags", str(dags), env=env)
    print("\nSeaweedFS stopped. The demo's files are in .demo/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Signed versions against a real SeaweedFS: push signs, pull and the version store refuse what a trusted key did not sign."""

from __future__ import annotations

import hashlib
import json
import subprocess

import pytest
from support import pull, put, tree
from test_push import cli, env_for, staging, write  # noqa: F401 - cli and staging are fixtures

from objsync.manifest import FileEntry, Manifest, Signature, content_id
from objsync.pull.versionstore import VersionStore
from objsync.pull.versiontree import VersionError
from objsync.s3.bucket import Bucket
from objsync.s3.config import Location, RemoteConfig
from objsync.signing import load_signing_key

V1 = {"dag.py": b"import helper\nVERSION = 1\n", "helper.py": b"GOOD = True\n"}
EVIL = b"import os; os.system('x')\n"  # what an attacker with write access to the bucket would plant
MANIFEST_KEY = "dags/.objsync/manifests/r.json"


@pytest.fixture
def signer(cli, tmp_path):
    """Two key pairs made by `objsync keygen`: (private, public) paths for keys a and b."""
    out = {}
    for name in ("a", "b"):
        run = cli("keygen", str(tmp_path / f"{name}.pem"), cwd=tmp_path)
        assert run.rc == 0, run.err
        out[name] = (tmp_path / f"{name}.pem", tmp_path / f"{name}.pem.pub")
    return out


def push(cli, tmp_path, bucket, files, *extra):
    repo = tmp_path / "r"
    for old in (repo / "workflow").glob("*") if (repo / "workflow").exists() else ():
        old.unlink()
    write(repo / "workflow", files)
    run = cli("push", "dev", "--repo", "r", "--json", *extra, cwd=repo, env=env_for(bucket))
    assert run.rc == 0, run.err
    return run.summary["manifest_id"]


def doc(s3_client, bucket, key=MANIFEST_KEY) -> dict:
    return json.loads(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read())


def put_doc(s3_client, bucket, d: dict, key=MANIFEST_KEY) -> None:
    s3_client.put_object(Bucket=bucket, Key=key, Body=json.dumps(d, sort_keys=True).encode())


def signed_pull(bucket, dest, aws_env, *keys):
    flags = [x for k in keys for x in ("--verify-key", str(k))]
    return pull(f"s3://{bucket}/dags", dest, *flags, env=aws_env)


def refusal(run) -> str:
    errors = json.loads(run.out.strip().splitlines()[-1])["errors"]
    assert len(errors) == 1, errors
    return errors[0]["error"]


def test_a_signed_push_is_pulled_and_verified(cli, s3_client, bucket, tmp_path, aws_env, signer):
    mid = push(cli, tmp_path, bucket, V1, "--sign-key", str(signer["a"][0]))
    d = doc(s3_client, bucket)
    assert d["schema"] == 3 and d["signature"]["key_id"] == load_signing_key(signer["a"][0].read_bytes(), "a").key_id
    assert all(len(f["sha256"]) == 64 for f in d["files"])
    history = doc(s3_client, bucket, f"dags/.objsync/history/r/{mid}.json")
    assert history == d
    run = signed_pull(bucket, tmp_path / "d", aws_env, signer["b"][1], signer["a"][1])
    assert run.rc == 0, run.err
    assert tree(tmp_path / "d") == {f"r/{k}": v for k, v in V1.items()}
    plain = pull(f"s3://{bucket}/dags", tmp_path / "plain", env=aws_env)  # no keys: schema 3 still reads
    assert plain.rc == 0 and tree(tmp_path / "plain") == tree(tmp_path / "d")
    again = push(cli, tmp_path, bucket, V1, "--sign-key", str(signer["a"][0]))
    assert again == mid and doc(s3_client, bucket) == d  # unchanged: not written again


def test_a_forged_object_and_md5_in_a_rewritten_manifest_are_refused(cli, s3_client, bucket, tmp_path, aws_env, signer):
    push(cli, tmp_path, bucket, V1, "--sign-key", str(signer["a"][0]))
    dest = tmp_path / "d"
    assert signed_pull(bucket, dest, aws_env, signer["a"][1]).rc == 0
    forged = EVIL[:len(V1["helper.py"])].ljust(len(V1["helper.py"]), b"#")  # same size
    put(s3_client, bucket, {"dags/r/helper.py": forged})
    d = doc(s3_client, bucket)
    head = s3_client.head_object(Bucket=bucket, Key="dags/r/helper.py")
    for f in d["files"]:
        if f["path"] == "helper.py":
            f["md5"] = f["etag"] = hashlib.md5(forged).hexdigest()
            assert head["ETag"].strip('"') == f["etag"]
    d["id"] = content_id(tuple(FileEntry(**f) for f in d["files"]))
    put_doc(s3_client, bucket, d)

    run = signed_pull(bucket, dest, aws_env, signer["a"][1])
    assert run.rc == 1
    why = refusal(run)
    assert "repo 'r' refused" in why and "signature does not match its contents" in why
    assert tree(dest) == {f"r/{k}": v for k, v in V1.items()}  # the good files stay
    cold = signed_pull(bucket, tmp_path / "cold", aws_env, signer["a"][1])
    assert cold.rc == 1 and tree(tmp_path / "cold") == {}


def test_an_object_that_is_not_the_signed_bytes_is_refused_and_the_good_file_stays(
        cli, s3_client, bucket, tmp_path, aws_env, signer):
    push(cli, tmp_path, bucket, V1, "--sign-key", str(signer["a"][0]))
    dest = tmp_path / "d"
    assert signed_pull(bucket, dest, aws_env, signer["a"][1]).rc == 0
    # Bytes whose MD5 and size match while their SHA-256 does not (an MD5 collision), as a signed manifest sees them.
    key = load_signing_key(signer["a"][0].read_bytes(), "a")
    m = Manifest.from_json(json.dumps(doc(s3_client, bucket)))
    files = tuple(type(f)(f.path, f.size, f.etag, f.md5, f.version_id, "0" * 64 if f.path == "helper.py" else f.sha256)
                  for f in m.files)
    odd = Manifest(m.repo, files, "c" * 40, m.created, m.objsync_version)
    odd = odd.signed(Signature(key.key_id, key.sign(odd.statement())))
    s3_client.put_object(Bucket=bucket, Key=MANIFEST_KEY, Body=odd.to_json())
    (dest / "r" / "helper.py").unlink()  # so the pull must fetch it

    run = signed_pull(bucket, dest, aws_env, signer["a"][1])
    assert run.rc == 1
    assert "SHA-256" in refusal(run) and "not the one that was signed" in refusal(run)
    assert not (dest / "r" / "helper.py").exists() and (dest / "r" / "dag.py").read_bytes() == V1["dag.py"]
    s3_client.put_object(Bucket=bucket, Key=MANIFEST_KEY, Body=m.to_json())
    assert signed_pull(bucket, dest, aws_env, signer["a"][1]).rc == 0
    assert tree(dest) == {f"r/{k}": v for k, v in V1.items()}


def test_the_wrong_key_and_a_stripped_signature_are_refused(cli, s3_client, bucket, tmp_path, aws_env, signer):
    push(cli, tmp_path, bucket, V1, "--sign-key", str(signer["a"][0]))
    dest = tmp_path / "d"
    assert signed_pull(bucket, dest, aws_env, signer["a"][1]).rc == 0
    v2 = V1 | {"helper.py": EVIL}
    push(cli, tmp_path, bucket, v2, "--sign-key", str(signer["b"][0]))  # someone else's key
    run = signed_pull(bucket, dest, aws_env, signer["a"][1])
    assert run.rc == 1 and "which is not one of the trusted keys" in refusal(run)
    assert tree(dest) == {f"r/{k}": v for k, v in V1.items()}

    d = doc(s3_client, bucket)
    put_doc(s3_client, bucket, d | {"signature": None})
    run = signed_pull(bucket, dest, aws_env, signer["a"][1])
    assert run.rc == 1 and "it is not signed" in refusal(run)
    push(cli, tmp_path, bucket, v2)  # unsigned: schema 1, no SHA-256s at all
    assert doc(s3_client, bucket)["schema"] == 1
    run = signed_pull(bucket, dest, aws_env, signer["a"][1])
    assert run.rc == 1 and "objsync push --sign-key" in refusal(run)
    assert tree(dest) == {f"r/{k}": v for k, v in V1.items()}


def test_rollback_to_a_version_of_a_retired_key_follows_the_configured_keys(
        cli, s3_client, bucket, tmp_path, aws_env, signer):
    s3_client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    old = push(cli, tmp_path, bucket, V1, "--sign-key", str(signer["a"][0]))
    v2 = V1 | {"dag.py": b"import helper\nVERSION = 2\n"}
    push(cli, tmp_path, bucket, v2, "--sign-key", str(signer["b"][0]))  # key a retired, b signs from now on
    dest = tmp_path / "d"
    assert signed_pull(bucket, dest, aws_env, signer["b"][1]).rc == 0
    run = cli("push", "dev", "--repo", "r", "--rollback", old, "--json", cwd=tmp_path, env=env_for(bucket))
    assert run.rc == 0, run.err
    assert doc(s3_client, bucket)["signature"]["key_id"] == load_signing_key(signer["a"][0].read_bytes(), "").key_id

    refused = signed_pull(bucket, dest, aws_env, signer["b"][1])
    assert refused.rc == 1 and "not one of the trusted keys" in refusal(refused)
    assert tree(dest) == {f"r/{k}": v for k, v in v2.items()}
    both = signed_pull(bucket, dest, aws_env, signer["b"][1], signer["a"][1])
    assert both.rc == 0, both.err
    assert tree(dest) == {f"r/{k}": v for k, v in V1.items()}


def test_folders_without_a_manifest_are_refused_unless_allowed(cli, s3_client, bucket, tmp_path, aws_env, signer):
    push(cli, tmp_path, bucket, V1, "--sign-key", str(signer["a"][0]))
    put(s3_client, bucket, {"dags/other/evil.py": EVIL, "dags/top.py": EVIL})
    dest = tmp_path / "d"
    run = signed_pull(bucket, dest, aws_env, signer["a"][1])
    assert run.rc == 1
    errors = {e["key"]: e["error"] for e in json.loads(run.out.strip().splitlines()[-1])["errors"]}
    assert set(errors) == {"dags/other", "dags/top.py"}
    assert all("--allow-unsigned-folders" in why for why in errors.values())
    assert tree(dest) == {f"r/{k}": v for k, v in V1.items()}
    allowed = pull(f"s3://{bucket}/dags", dest, "--verify-key", str(signer["a"][1]), "--allow-unsigned-folders",
                   env=aws_env)
    assert allowed.rc == 0, allowed.err
    assert tree(dest)["other/evil.py"] == EVIL

    s3_client.delete_object(Bucket=bucket, Key=MANIFEST_KEY)  # no manifest at all: LIST mode is never used
    lonely = signed_pull(bucket, tmp_path / "e", aws_env, signer["a"][1])
    assert lonely.rc == 1 and tree(tmp_path / "e") == {}


def test_promote_keeps_the_signature_or_signs_for_the_target(cli, s3_client, bucket, staging, tmp_path, aws_env, signer):
    repo = tmp_path / "r"
    write(repo / "workflow", V1)
    env = env_for(bucket) | env_for(staging, name="STAGING")
    assert cli("push", "dev", "--repo", "r", "--sign-key", str(signer["a"][0]), cwd=repo, env=env).rc == 0
    run = cli("promote", "dev", "staging", "--repo", "r", cwd=repo, env=env)
    assert run.rc == 0, run.err
    assert signed_pull(staging, tmp_path / "s", aws_env, signer["a"][1]).rc == 0
    assert tree(tmp_path / "s") == {f"r/{k}": v for k, v in V1.items()}
    assert signed_pull(staging, tmp_path / "t", aws_env, signer["b"][1]).rc == 1

    run = cli("promote", "dev", "staging", "--repo", "r", "--sign-key", str(signer["b"][0]), cwd=repo, env=env)
    assert run.rc == 0, run.err
    assert signed_pull(staging, tmp_path / "t", aws_env, signer["b"][1]).rc == 0
    assert tree(tmp_path / "t") == {f"r/{k}": v for k, v in V1.items()}

    assert cli("push", "dev", "--repo", "r", cwd=repo, env=env).rc == 0  # unsigned in dev: nothing to re-sign from
    run = cli("promote", "dev", "staging", "--repo", "r", "--sign-key", str(signer["b"][0]), cwd=repo, env=env)
    assert run.rc == 1 and "pushed unsigned" in run.err


def test_the_version_store_builds_only_signed_versions(cli, s3_client, bucket, tmp_path, aws_env, signer, seaweed):
    s3_client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    remote = RemoteConfig(endpoint_url=seaweed.endpoint_url)
    keys_a = load_keys(signer["a"][1])

    def store(keys, base):
        return VersionStore(Bucket(remote, bucket), remote, Location(bucket, "dags"), "r", base, base / "versions",
                            keys)

    v1 = push(cli, tmp_path, bucket, V1, "--sign-key", str(signer["a"][0]))
    s = store(keys_a, tmp_path / "b")
    assert s.refresh() == v1
    push(cli, tmp_path, bucket, V1 | {"helper.py": EVIL}, "--sign-key", str(signer["b"][0]))
    with pytest.raises(VersionError, match="'r'.*not one of the trusted keys.*version .* stays current"):
        s.refresh()
    assert s.current() == v1
    unsigned = push(cli, tmp_path, bucket, V1 | {"dag.py": b"X = 3\n"})
    with pytest.raises(VersionError, match="not signed"):
        store(keys_a, tmp_path / "worker").ensure(unsigned)  # a pinned run of an unsigned version
    assert not (tmp_path / "worker" / "versions" / unsigned).exists()
    assert (store(keys_a, tmp_path / "worker").ensure(v1) / "helper.py").read_bytes() == V1["helper.py"]
    # A key that is no longer trusted no longer runs the version this host already has.
    with pytest.raises(VersionError, match="not one of the trusted keys"):
        store(load_keys(signer["b"][1]), tmp_path / "worker").ensure(v1)


def test_openssl_keys_work_and_bad_keys_are_named(cli, bucket, tmp_path, aws_env):
    key = tmp_path / "ossl.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(key)], check=True)
    pub = tmp_path / "ossl.pub"
    subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-out", str(pub)], check=True)
    push(cli, tmp_path, bucket, V1, "--sign-key", str(key))
    assert signed_pull(bucket, tmp_path / "d", aws_env, pub).rc == 0

    rsa = tmp_path / "rsa.pem"
    subprocess.run(["openssl", "genpkey", "-algorithm", "rsa", "-pkeyopt", "rsa_keygen_bits:1024", "-out", str(rsa)],
                   check=True, capture_output=True)
    run = cli("push", "dev", "--repo", "r", "--sign-key", str(rsa), cwd=tmp_path / "r", env=env_for(bucket))
    assert run.rc == 2 and "not Ed25519" in run.err and str(rsa) in run.err
    bad = pull(f"s3://{bucket}/dags", tmp_path / "e", "--verify-key", str(tmp_path / "missing.pub"), env=aws_env)
    assert bad.rc == 2 and "missing.pub" in bad.err
    env_pem = pull(f"s3://{bucket}/dags", tmp_path / "f", env=aws_env | {"OBJSYNC_VERIFY_KEYS": pub.read_text()})
    assert env_pem.rc == 0 and tree(tmp_path / "f") == tree(tmp_path / "d")
    secret = cli("push", "dev", "--repo", "r", "--json", cwd=tmp_path / "r",
                 env=env_for(bucket) | {"OBJSYNC_SIGN_KEY": key.read_text()})
    assert secret.rc == 0, secret.err


def load_keys(path):
    from objsync.signing import load_verify_keys

    return tuple(load_verify_keys(path.read_bytes(), str(path)))

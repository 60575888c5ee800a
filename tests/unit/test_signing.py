"""Signed manifests without a server: schema 3, the statement a signature covers, keys and their errors."""

import json
import os
from dataclasses import replace

import pytest

from objsync.manifest import FileEntry, Manifest, ManifestError, Origin, Signature
from objsync.model import LocalFile
from objsync.pull.versions import Refused, check_signature, parse_manifest
from objsync.pull.versiontree import Base
from objsync.pull.versiontree import _entries as base_entries  # noqa: PLC2701 - the linking rule itself
from objsync.signing import (BadKey, SignatureError, generate, keys_from_items, load_signing_key, load_verify_keys,
                             verify, verify_keys_from)

MD5 = "0123456789abcdef0123456789abcdef"
SHA = "ab" * 32


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys")
    out = {}
    for name in ("a", "b"):
        pub, kid = generate(str(folder / name))
        out[name] = (load_signing_key((folder / name).read_bytes(), name),
                     load_verify_keys((folder / f"{name}.pub").read_bytes(), pub)[0])
        assert out[name][0].key_id == out[name][1].key_id == kid
    return out


def sample(**changes) -> Manifest:
    fields = dict(repo="team-dags", files=(FileEntry("a.py", 3, MD5, MD5, "v1", SHA),
                                           FileEntry("b.py", 5, MD5 + "-2", "f" * 32, None, "cd" * 32)),
                  commit="9fceb02d0ae598e95dc970b74767f19372d61af8", created="2024-05-01T12:00:00Z",
                  objsync_version="0.1.0")
    return Manifest(**(fields | changes))


def signed(m: Manifest, key) -> Manifest:
    return m.signed(Signature(key.key_id, key.sign(m.statement())))


def test_schema_3_round_trips_with_its_signature(keys):
    m = signed(sample(), keys["a"][0])
    assert m.schema == 3 and json.loads(m.to_json())["signature"]["key_id"] == keys["a"][0].key_id
    back = Manifest.from_json(m.to_json())
    assert back == m and back.id == m.id
    check_signature(back, [keys["b"][1], keys["a"][1]])
    assert sample(files=(FileEntry("a.py", 3, MD5, MD5),)).schema == 1  # unsigned, no SHA-256s: still schema 1


def test_the_statement_covers_content_and_not_when_or_where_it_was_written(keys):
    m = sample()
    later = sample(created="2030-01-01T00:00:00Z", objsync_version="9.9",
                   promoted_from=Origin("dev", "s3://b/p", "0123456789abcdef"),
                   files=tuple(replace(f, version_id="other") for f in m.files))
    assert later.statement() == m.statement()
    for changed in (sample(commit=None), sample(repo="other"), sample(source_url="https://x/y"),
                    sample(files=(replace(m.files[0], sha256="00" * 32), m.files[1])),
                    sample(files=(replace(m.files[0], etag="e" * 32), m.files[1])),
                    sample(files=(replace(m.files[0], size=4), m.files[1])),
                    sample(files=m.files[:1])):
        assert changed.statement() != m.statement()
        with pytest.raises(SignatureError, match="does not match its contents"):
            verify(changed.statement(), keys["a"][0].key_id, keys["a"][0].sign(m.statement()), [keys["a"][1]])


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(signature=None), "it is not signed"),
    (lambda d: d["signature"].update(key_id="0" * 16), "not one of the trusted keys"),
    (lambda d: d["files"][0].update(sha256="00" * 32), "does not match its contents"),
    (lambda d: d.update(commit="a" * 40), "does not match its contents"),
])
def test_parse_refuses_what_the_trusted_keys_did_not_sign(keys, mutate, message):
    d = json.loads(signed(sample(), keys["a"][0]).to_json())
    mutate(d)
    with pytest.raises(Refused, match=message):
        parse_manifest(json.dumps(d).encode(), "team-dags", keys=[keys["a"][1]])
    assert parse_manifest(json.dumps(d).encode(), "team-dags").repo == "team-dags"  # without keys: read as before


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["files"][0].pop("sha256"), "missing sha256"),
    (lambda d: d["files"][0].update(sha256="XY"), "sha256 'XY' must be 64 lowercase hex digits"),
    (lambda d: d.update(schema=2), "manifest: unknown signature"),
    (lambda d: d.update(schema=2, signature=None) or d.pop("signature"), r"files\[0\]: unknown sha256"),
    (lambda d: d["signature"].update(ed25519="not base64"), "base64 Ed25519 signature"),
    (lambda d: d["signature"].update(extra=1), "signature: unknown extra"),
])
def test_schema_3_is_read_strictly(keys, mutate, message):
    d = json.loads(signed(sample(), keys["a"][0]).to_json())
    mutate(d)
    with pytest.raises(ManifestError, match=message):
        Manifest.from_json(json.dumps(d))


def test_keys_from_files_env_text_and_private_keys(tmp_path, keys):
    pub_a, _ = generate(str(tmp_path / "a"))
    pub_b, _ = generate(str(tmp_path / "b"))
    both = (tmp_path / "a.pub").read_text() + (tmp_path / "b.pub").read_text()
    from_env = verify_keys_from([], {"OBJSYNC_VERIFY_KEYS": both})
    assert len(from_env) == 2 and {k.origin for k in from_env} == {"OBJSYNC_VERIFY_KEYS"}
    from_paths = verify_keys_from([], {"OBJSYNC_VERIFY_KEYS": f"{pub_a}, {pub_b}"})
    assert [k.key_id for k in from_paths] == [k.key_id for k in from_env]
    assert verify_keys_from([pub_a], {"OBJSYNC_VERIFY_KEYS": both}) == from_paths[:1]  # the flag wins
    private_as_public = load_verify_keys((tmp_path / "a").read_bytes(), "a")
    assert private_as_public[0].key_id == from_env[0].key_id
    assert keys_from_items([pub_a, pub_a], {}) == from_paths[:1]  # the same key twice counts once
    assert keys_from_items(None, {}) == ()


def test_bad_keys_are_named_with_what_to_do(tmp_path):
    (tmp_path / "junk.pem").write_text("hello")
    with pytest.raises(BadKey, match=r"junk.pem: no PEM key found.*objsync keygen"):
        verify_keys_from([str(tmp_path / "junk.pem")], {})
    with pytest.raises(BadKey, match=r"cannot read key file .*nope.pub"):
        verify_keys_from([str(tmp_path / "nope.pub")], {})
    with pytest.raises(BadKey, match="OBJSYNC_SIGN_KEY: not an unencrypted PEM private key"):
        load_signing_key(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "OBJSYNC_SIGN_KEY")


def test_keygen_writes_a_private_key_only_its_owner_reads_and_never_overwrites(tmp_path):
    pub, kid = generate(str(tmp_path / "k"))
    assert os.stat(tmp_path / "k").st_mode & 0o777 == 0o600 and pub == str(tmp_path / "k.pub")
    before = (tmp_path / "k").read_bytes()
    with pytest.raises(BadKey, match="exists already"):
        generate(str(tmp_path / "k"))
    assert (tmp_path / "k").read_bytes() == before and len(kid) == 16


def test_a_signed_file_is_linked_from_a_base_only_when_the_base_signed_the_same_bytes():
    m = sample()
    local = {f.path: LocalFile(f.size, 1) for f in m.files}
    same = Base("/base", m)
    assert set(base_entries(same, local, m)) == {"a.py", "b.py"}
    unsigned_base = Base("/base", sample(files=tuple(replace(f, sha256=None) for f in m.files)))
    assert base_entries(unsigned_base, local, m) == {}
    other = Base("/base", sample(files=(replace(m.files[0], sha256="00" * 32), m.files[1])))
    assert set(base_entries(other, local, m)) == {"b.py"}
    unsigned_new = sample(files=tuple(replace(f, sha256=None) for f in m.files))
    assert set(base_entries(unsigned_base, local, unsigned_new)) == {"a.py", "b.py"}


def test_keygen_into_a_missing_folder_says_so(tmp_path):
    with pytest.raises(BadKey, match=r"cannot write .*nope/k: No such file or directory; check that its folder"):
        generate(str(tmp_path / "nope" / "k"))

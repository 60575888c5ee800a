"""Ed25519 keys for signed versions: load PEM keys, sign a manifest's statement, verify it against trusted keys.

`cryptography` is imported only when a key is used, so a pull without keys does not pay for it.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from dataclasses import dataclass
from typing import Iterable, Mapping

SIGN_KEY_ENV = "OBJSYNC_SIGN_KEY"
VERIFY_KEYS_ENV = "OBJSYNC_VERIFY_KEYS"
_PEM = re.compile(r"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----", re.S)


class BadKey(ValueError):
    """A key that cannot be used; the message names where it came from and what to do."""


class SignatureError(ValueError):
    """A statement whose signature is missing, from an untrusted key, or does not match."""


@dataclass(frozen=True, slots=True)
class VerifyKey:
    """A trusted public key: its id (16 hex digits of the SHA-256 of its raw bytes), raw bytes and origin."""

    key_id: str
    raw: bytes
    origin: str  # a file name or an environment variable, for messages


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key to sign with, as raw bytes, and its public key's id."""

    key_id: str
    raw: bytes
    origin: str

    def sign(self, statement: bytes) -> str:
        """The base64 Ed25519 signature of `statement`."""
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        return base64.b64encode(Ed25519PrivateKey.from_private_bytes(self.raw).sign(statement)).decode()


def key_id(public_raw: bytes) -> str:
    """The short id of a public key, as manifests and messages show it."""
    return hashlib.sha256(public_raw).hexdigest()[:16]


def verify(statement: bytes, signer: str, signature: str, keys: Iterable[VerifyKey]) -> VerifyKey:
    """The trusted key whose signature `signature` is over `statement`; raises SignatureError."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    keys = tuple(keys)
    match = [k for k in keys if k.key_id == signer]
    if not match:
        trusted = ", ".join(f"{k.key_id} ({k.origin})" for k in keys)
        raise SignatureError(f"it is signed by key {signer}, which is not one of the trusted keys: {trusted}")
    try:
        raw = base64.b64decode(signature, validate=True)
        Ed25519PublicKey.from_public_bytes(match[0].raw).verify(raw, statement)
    except (InvalidSignature, ValueError):
        raise SignatureError(f"its signature does not match its contents for key {signer}: it was altered "
                             f"after signing, or signed by another key under that id") from None
    return match[0]


def load_signing_key(pem: bytes, origin: str) -> SigningKey:
    """An Ed25519 private key from PEM text (PKCS#8, as `openssl genpkey -algorithm ed25519` writes)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise BadKey(f"{origin}: not an unencrypted PEM private key ({exc}); make one with "
                        f"`objsync keygen FILE` or `openssl genpkey -algorithm ed25519 -out FILE`") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BadKey(f"{origin}: a {type(key).__name__} key, not Ed25519; signed versions use Ed25519 keys")
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                            serialization.NoEncryption())
    return SigningKey(key_id(_public_raw(key.public_key())), raw, origin)


def load_verify_keys(pem: bytes, origin: str) -> list[VerifyKey]:
    """Every Ed25519 key in PEM text: public keys, or private keys whose public half is taken."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

    blocks = [m.group(0) for m in _PEM.finditer(pem.decode("utf-8", "replace"))]
    if not blocks:
        raise BadKey(f"{origin}: no PEM key found; give the public key file that `objsync keygen` wrote "
                        f"(FILE.pub), or `openssl pkey -in FILE -pubout`")
    keys = []
    for block in blocks:
        try:
            if "PRIVATE KEY" in block.partition("\n")[0]:
                key = serialization.load_pem_private_key(block.encode(), password=None)
                key = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
            else:
                key = serialization.load_pem_public_key(block.encode())
        except (ValueError, TypeError) as exc:
            raise BadKey(f"{origin}: not a readable PEM key ({exc})") from None
        if not isinstance(key, Ed25519PublicKey):
            raise BadKey(f"{origin}: a {type(key).__name__} key, not Ed25519; signed versions use Ed25519 keys")
        raw = _public_raw(key)
        keys.append(VerifyKey(key_id(raw), raw, origin))
    return keys


def read_key_file(path: str) -> bytes:
    """A key file's bytes; BadKey naming the file when it cannot be read."""
    try:
        with open(path, "rb") as fh:
            return fh.read(1 << 20)
    except OSError as exc:
        raise BadKey(f"cannot read key file {path}: {exc.strerror or exc}") from None


def signing_key_from(path: str | None, env: Mapping[str, str]) -> SigningKey | None:
    """--sign-key FILE, else OBJSYNC_SIGN_KEY (the PEM itself, or a file's path); None when neither is set."""
    if path:
        return load_signing_key(read_key_file(path), path)
    text = env.get(SIGN_KEY_ENV, "").strip()
    if not text:
        return None
    if "-----BEGIN" in text:
        return load_signing_key(text.encode(), SIGN_KEY_ENV)
    return load_signing_key(read_key_file(text), f"{SIGN_KEY_ENV}={text}")


def verify_keys_from(paths: Iterable[str], env: Mapping[str, str]) -> tuple[VerifyKey, ...]:
    """--verify-key FILE (repeatable), else OBJSYNC_VERIFY_KEYS: PEM text, or key files separated by commas."""
    keys: list[VerifyKey] = []
    for path in paths:
        keys += load_verify_keys(read_key_file(path), path)
    if not keys:
        keys = keys_from_text(env.get(VERIFY_KEYS_ENV, ""), VERIFY_KEYS_ENV)
    return _unique(keys)


def keys_from_text(text: str, origin: str) -> list[VerifyKey]:
    """Public keys from PEM text itself, or from the key files it names (separated by commas or lines)."""
    text = text.strip()
    if "-----BEGIN" in text:
        return load_verify_keys(text.encode(), origin)
    keys: list[VerifyKey] = []
    for path in (p.strip() for p in re.split(r"[,\n]", text)):
        if path:
            keys += load_verify_keys(read_key_file(path), path)
    return keys


def keys_from_items(items: str | Iterable[str] | None, env: Mapping[str, str]) -> tuple[VerifyKey, ...]:
    """Keys given as PEM texts or key files (one, or a list), else OBJSYNC_VERIFY_KEYS; () for none."""
    if isinstance(items, str):
        items = [items]
    keys = [k for item in items or () for k in keys_from_text(item, "verify_keys")]
    return _unique(keys or keys_from_text(env.get(VERIFY_KEYS_ENV, ""), VERIFY_KEYS_ENV))


def _unique(keys: Iterable[VerifyKey]) -> tuple[VerifyKey, ...]:
    out: dict[str, VerifyKey] = {}
    for k in keys:
        out.setdefault(k.key_id, k)
    return tuple(out.values())


def generate(path: str) -> tuple[str, str]:
    """Write a new private key to `path` (mode 0600, never over a file) and its public key to `path`.pub."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    pub_path = path + ".pub"
    for p in (path, pub_path):
        if os.path.lexists(p):
            raise BadKey(f"{p} exists already; choose another name, or move it away first")
    for p, data, mode in ((path, private, 0o600), (pub_path, public, 0o644)):
        try:
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        except OSError as exc:
            raise BadKey(f"cannot write {p}: {exc.strerror or exc}; check that its folder exists and is "
                         f"writable") from None
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
    return pub_path, key_id(_public_raw(key.public_key()))


def _public_raw(public) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

"""Ed25519 signatures on the seal chain, the seal file and export packs.

The private key lives outside the database: ``AUDIT_SIGNING_KEY_FILE`` (a
PEM file, PKCS#8) or ``AUDIT_SIGNING_KEY`` (the PEM text). In development and
tests (AUDIT_DEVELOPMENT_KEYS) a missing key is generated beside the seal file
(``var/audit-signing-key.pem``) and :attr:`Signer.generated` says so; in
production a missing key refuses sealing (system check ``audit.E005``).

A key is named by its **key id**: the first 16 bytes of SHA-256 of the raw
32-byte public key, in hex. Each public key that ever signed a link is listed
in :class:`~audit.models.AuditSigningKey` from the first link it signed
(``first_seq``): after a rotation (point the setting at a new key) the new key
signs from the next link on and the old one stays listed, so earlier links
keep verifying.

What a link's signature covers is its **statement**, the canonical JSON
(sorted keys, no spaces, UTF-8) of::

    {"format": "marine-audit-seal/1", "seq", "kind", "hash", "prev_hash",
     "rows_digest", "created_at", "ranges", "row_count", "key_id"}

``hash`` already commits to everything else of the link (the chain hash), so
the signature makes the chain checkable with the public key alone: a forger
without the private key can change no row, no link and no range.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from audit import conf

STATEMENT_FORMAT = "marine-audit-seal/1"
ANCHOR_FORMAT = "marine-audit-anchor/1"


class SigningKeyMissing(RuntimeError):
    """No signing key is configured and development keys are not allowed."""


class SigningKeyInvalid(RuntimeError):
    """The configured signing key cannot be read as an Ed25519 private key."""


def canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:32]


def public_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


@dataclass(frozen=True)
class Signer:
    private_key: Ed25519PrivateKey
    key_id: str
    public_pem: str
    source: str  # where the key came from, for messages (never the key itself)
    generated: bool  # a development key generated on first use

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self.private_key.sign(message)).decode("ascii")


@dataclass(frozen=True)
class PublicKey:
    key_id: str
    key: Ed25519PublicKey
    pem: str

    def verifies(self, message: bytes, signature: str) -> bool:
        try:
            self.key.verify(base64.b64decode(signature, validate=True), message)
        except (InvalidSignature, ValueError):
            return False
        return True


# -- loading keys ------------------------------------------------------------------------------

_cache: dict[tuple, Signer] = {}
_lock = threading.Lock()


def generate_private_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def write_private_key(path: Path) -> None:
    """Create ``path`` with a new private key, readable by its owner only;
    an existing file is never overwritten (FileExistsError)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(generate_private_pem())
        fh.flush()
        os.fsync(fh.fileno())


def _load_private(pem: bytes, source: str, generated: bool) -> Signer:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyInvalid(f"{source} is not a PEM private key without a passphrase") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyInvalid(f"{source} is not an Ed25519 key")
    public = key.public_key()
    return Signer(key, key_id(public), public_pem(public), source, generated)


def signer() -> Signer:
    """The configured signing key (cached while its file is unchanged)."""
    path, pem = conf.signing_key_file(), conf.signing_key_pem()
    generated = False
    if pem:
        cache_key = ("env", hashlib.sha256(pem.encode()).hexdigest())
        source = "AUDIT_SIGNING_KEY"
    else:
        if path is None:
            if not conf.development_keys_allowed():
                raise SigningKeyMissing("No signing key: set AUDIT_SIGNING_KEY_FILE to an Ed25519 private key "
                                        "(manage.py seal_keys --generate PATH creates one).")
            path = conf.development_signing_key_file()
            generated = True
            if not path.exists():
                try:
                    write_private_key(path)
                except FileExistsError:  # another process generated it first
                    pass
        try:
            stat = path.stat()
        except OSError as exc:
            raise SigningKeyInvalid(f"AUDIT_SIGNING_KEY_FILE {path} cannot be read: {exc.strerror}") from exc
        cache_key = ("file", str(path), stat.st_mtime_ns, stat.st_size)
        source = f"{'development key ' if generated else ''}{path}"
    with _lock:
        cached = _cache.get(cache_key)
    if cached is not None:
        return cached
    data = pem.encode() if pem else path.read_bytes()
    loaded = _load_private(data, source, generated)
    with _lock:
        _cache.clear()
        _cache[cache_key] = loaded
    return loaded


def load_public_keys(data: bytes, source: str = "key file") -> list[PublicKey]:
    """Every PEM public key in ``data`` (a key ring may hold several)."""
    keys = []
    marker = b"-----BEGIN PUBLIC KEY-----"
    blocks = [marker + part for part in data.split(marker)[1:]]
    if not blocks:
        raise ValueError(f"{source} holds no PEM public key")
    for block in blocks:
        try:
            key = serialization.load_pem_public_key(block)
        except ValueError as exc:
            raise ValueError(f"{source} holds a PEM block that is not a public key") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError(f"{source} holds a key that is not Ed25519")
        keys.append(PublicKey(key_id(key), key, public_pem(key)))
    return keys


def load_public_key_of(path: Path) -> PublicKey:
    """The public half of a private key file."""
    loaded = _load_private(path.read_bytes(), str(path), False)
    return PublicKey(loaded.key_id, loaded.private_key.public_key(), loaded.public_pem)


def current_public_key() -> PublicKey:
    active = signer()
    return PublicKey(active.key_id, active.private_key.public_key(), active.public_pem)


def registered_keys(using: str = "default") -> list[PublicKey]:
    """The public keys listed in the database, oldest first."""
    from audit.models import AuditSigningKey

    keys = []
    for row in AuditSigningKey.objects.using(using).order_by("first_seq"):
        keys.extend(load_public_keys(row.public_key.encode(), f"listed key {row.key_id}"))
    return keys


def register(active: Signer, *, first_seq: int, using: str = "default") -> bool:
    """List ``active``'s public key from link ``first_seq`` on if it is new (call
    in the transaction that inserts that link). True when it was added."""
    from audit.models import AuditSigningKey

    if AuditSigningKey.objects.using(using).filter(key_id=active.key_id).exists():
        return False
    AuditSigningKey.objects.using(using).create(key_id=active.key_id, public_key=active.public_pem,
                                                first_seq=first_seq)
    return True


# -- statements --------------------------------------------------------------------------------


def link_statement(*, seq: int, kind: str, hash: str, prev_hash: str, rows_digest: str, created_at: str,
                   ranges: dict, row_count: int, key_id: str) -> bytes:
    return canonical_json({
        "format": STATEMENT_FORMAT, "seq": seq, "kind": kind, "hash": hash, "prev_hash": prev_hash,
        "rows_digest": rows_digest, "created_at": created_at, "ranges": ranges, "row_count": row_count,
        "key_id": key_id,
    }).encode()


def anchor_statement(payload: dict, key: str) -> bytes:
    return canonical_json({"format": ANCHOR_FORMAT, **payload, "key_id": key}).encode()

"""Signed seals: Ed25519 over each link, checked with the public key alone; forgery, tampering, rotation."""

from __future__ import annotations

import base64
import io
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.models import AuditSeal, AuditSigningKey, AuditTrail
from audit.operations import integrity, signing

from .integrity_helpers import make_rows, raw

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def seal_file(tmp_path, settings):
    settings.AUDIT_SEAL_FILE = str(tmp_path / "seal.json")
    settings.AUDIT_SEAL_KEY = "k" * 40
    return tmp_path / "seal.json"


def new_key(tmp_path, name):
    path = tmp_path / f"{name}.pem"
    signing.write_private_key(path)
    return path


def public_file(tmp_path, *key_files, name="public.pem"):
    path = tmp_path / name
    path.write_text("".join(signing.load_public_key_of(k).pem for k in key_files))
    return path


def verify_command(*flags):
    """(exit status, output) of verify_audit."""
    out = io.StringIO()
    try:
        call_command("verify_audit", *flags, stdout=out, stderr=io.StringIO())
    except SystemExit as exc:
        return exc.code, out.getvalue()
    return 0, out.getvalue()


def test_a_seal_is_signed_and_verifies_with_the_public_key_alone(tmp_path, settings):
    key = new_key(tmp_path, "a")
    settings.AUDIT_SIGNING_KEY_FILE = str(key)
    make_rows(2)
    link = integrity.seal()
    public = signing.load_public_key_of(key)
    assert link.key_id == public.key_id and len(base64.b64decode(link.signature)) == 64
    # the documented statement, checked with cryptography directly
    statement = json.dumps({
        "format": "marine-audit-seal/1", "seq": link.seq, "kind": "seal", "hash": link.hash,
        "prev_hash": link.prev_hash, "rows_digest": link.rows_digest, "created_at": integrity.utc_text(link.created_at),
        "ranges": link.ranges, "row_count": link.row_count, "key_id": link.key_id,
    }, sort_keys=True, separators=(",", ":")).encode()
    public.key.verify(base64.b64decode(link.signature), statement)  # raises if it does not verify
    # the seal file is signed too
    document = json.loads((tmp_path / "seal.json").read_text())
    assert document["key_id"] == public.key_id and document["signature"]

    report = integrity.verify(public_keys=[public], check_hmac=False)
    assert report.ok and report.signed_links == 1 and report.keys == [public.key_id]
    code, out = verify_command("--public-key", str(public_file(tmp_path, key)))
    assert code == 0
    assert f"1 of 1 seals signature-checked with the given public keys (keys {public.key_id[:12]})" in out
    assert "Verification passed." in out


def test_a_forged_seal_and_a_tampered_row_are_rejected(tmp_path, settings):
    key = new_key(tmp_path, "a")
    settings.AUDIT_SIGNING_KEY_FILE = str(key)
    trails = make_rows(2)
    integrity.seal()
    make_rows(1, entity_prefix="EMG")
    second = integrity.seal()
    trusted = [signing.load_public_key_of(key)]

    # a row changed after sealing
    raw("UPDATE audit_trail SET change_reason = %s WHERE id = %s", ["forged", trails[0].pk])
    assert [(f.table, f.row_id) for f in integrity.verify(public_keys=trusted).findings] == [
        ("audit_trail", trails[0].pk)]
    raw("UPDATE audit_trail SET change_reason = %s WHERE id = %s", ["ok 0 ✓", trails[0].pk])
    assert integrity.verify(public_keys=trusted).ok

    # a forger re-signs the newest link with his own key (and lists it): only trusted keys count
    forger = Ed25519PrivateKey.generate()
    forged_id = signing.key_id(forger.public_key())
    second.key_id = forged_id
    signature = base64.b64encode(forger.sign(integrity.statement(second))).decode()
    raw("UPDATE audit_seals SET key_id = %s, signature = %s WHERE seq = %s", [forged_id, signature, second.seq])
    AuditSigningKey.objects.create(key_id=forged_id, public_key=signing.public_pem(forger.public_key()),
                                   first_seq=second.seq)
    problems = [str(f) for f in integrity.verify(public_keys=trusted).findings]
    assert problems == [f"audit_seals id {second.seq}: seal #{second.seq}: signed by key {forged_id[:12]}, "
                        "which is not a trusted public key"]

    # a signature that is not the key's
    raw("UPDATE audit_seals SET key_id = %s, signature = %s WHERE seq = %s",
        [trusted[0].key_id, base64.b64encode(b"\0" * 64).decode(), second.seq])
    problems = [str(f) for f in integrity.verify(public_keys=trusted).findings]
    assert problems == [f"audit_seals id {second.seq}: seal #{second.seq}: the signature does not verify "
                        "(link forged or altered)"]
    code, out = verify_command("--public-key", str(public_file(tmp_path, key)))
    assert code == 1 and f"TAMPERED audit_seals id {second.seq}" in out

    # a signature removed from a link after signing began
    raw("UPDATE audit_seals SET key_id = '', signature = '' WHERE seq = %s", [second.seq])
    assert "not signed, although the chain is signed from #1 on" in integrity.verify(
        public_keys=trusted).findings[0].problem


def test_a_seal_file_with_a_forged_signature_is_refused_with_the_public_key(tmp_path, settings, seal_file):
    key = new_key(tmp_path, "a")
    settings.AUDIT_SIGNING_KEY_FILE = str(key)
    make_rows(1)
    integrity.seal()
    document = json.loads(seal_file.read_text())
    document["signature"] = base64.b64encode(b"\1" * 64).decode()
    seal_file.write_text(json.dumps(document))
    problems = [str(f) for f in integrity.verify(public_keys=[signing.load_public_key_of(key)],
                                                 check_hmac=False).findings]
    assert len(problems) == 1 and "its signature does not verify with the trusted public keys" in problems[0]


def test_rotation_a_new_key_signs_from_the_next_seal_and_both_verify(tmp_path, settings):
    old, new = new_key(tmp_path, "old"), new_key(tmp_path, "new")
    settings.AUDIT_SIGNING_KEY_FILE = str(old)
    make_rows(1)
    first = integrity.seal()
    settings.AUDIT_SIGNING_KEY_FILE = str(new)
    make_rows(1, entity_prefix="EMG")
    second = integrity.seal()
    third = integrity.seal()
    old_id, new_id = signing.load_public_key_of(old).key_id, signing.load_public_key_of(new).key_id
    assert (first.key_id, second.key_id, third.key_id) == (old_id, new_id, new_id)
    assert list(AuditSigningKey.objects.values_list("key_id", "first_seq")) == [(old_id, 1), (new_id, 2)]

    both = public_file(tmp_path, old, new, name="ring.pem")
    report = integrity.verify(public_keys=signing.load_public_keys(both.read_bytes()))
    assert report.ok and report.keys == [old_id, new_id] and report.signed_links == 3
    assert integrity.verify().ok  # the keys listed in the database
    only_new = [str(f) for f in integrity.verify(public_keys=[signing.load_public_key_of(new)]).findings]
    assert only_new == [f"audit_seals id 1: seal #1: signed by key {old_id[:12]}, which is not a trusted public key"]
    code, out = verify_command("--public-key", str(public_file(tmp_path, old, name="o.pem")),
                               "--public-key", str(public_file(tmp_path, new, name="n.pem")))
    assert code == 0 and "3 of 3 seals signature-checked" in out

    # the old key must not sign again once rotated out
    settings.AUDIT_SIGNING_KEY_FILE = str(old)
    back = integrity.seal()
    problems = [str(f) for f in integrity.verify(public_keys=signing.load_public_keys(both.read_bytes())).findings]
    assert problems == [f"audit_seals id {back.seq}: seal #{back.seq}: signed with key {old_id[:12]} after it "
                        "was rotated out"]


def test_seal_keys_command_generates_lists_and_exports_keys(tmp_path, settings):
    path = tmp_path / "generated.pem"
    out = io.StringIO()
    call_command("seal_keys", "--generate", str(path), stdout=out)
    key_id = signing.load_public_key_of(path).key_id
    assert f"Created private key {path} (key id {key_id})" in out.getvalue()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(CommandError, match="never overwritten"):
        call_command("seal_keys", "--generate", str(path), stdout=io.StringIO())
    settings.AUDIT_SIGNING_KEY_FILE = str(path)
    make_rows(1)
    integrity.seal()
    out = io.StringIO()
    call_command("seal_keys", stdout=out)
    assert f"{key_id}  signs from seal #1 (configured)" in out.getvalue()
    ring = tmp_path / "ring.pem"
    call_command("seal_keys", "--public-keys", str(ring), stdout=io.StringIO())
    assert [k.key_id for k in signing.load_public_keys(ring.read_bytes())] == [key_id]
    assert "PRIVATE" not in ring.read_text()


def test_development_key_is_generated_beside_the_seal_file_and_said_so(tmp_path, settings):
    settings.AUDIT_SIGNING_KEY_FILE = ""
    out = io.StringIO()
    call_command("seal_audit", stdout=out)
    assert (tmp_path / "audit-signing-key.pem").exists()
    assert f"Signing with a development key generated at {tmp_path / 'audit-signing-key.pem'}" in out.getvalue()
    assert "production requires AUDIT_SIGNING_KEY_FILE" in out.getvalue()


def test_production_requires_a_signing_key(tmp_path, settings):
    settings.DEBUG = False
    settings.AUDIT_DEVELOPMENT_KEYS = False
    settings.AUDIT_SIGNING_KEY_FILE = ""
    settings.AUDIT_SIGNING_KEY = ""
    assert "audit.E005" in [m.id for m in run_checks(tags=["audit"])]
    with pytest.raises(CommandError, match="No signing key: set AUDIT_SIGNING_KEY_FILE"):
        call_command("seal_audit", stdout=io.StringIO())
    assert not AuditSeal.objects.exists()
    settings.AUDIT_SIGNING_KEY_FILE = str(tmp_path / "missing.pem")
    assert "audit.E006" in [m.id for m in run_checks(tags=["audit"])]
    settings.AUDIT_SIGNING_KEY_FILE = ""
    settings.AUDIT_SIGNING_KEY = new_key(tmp_path, "env").read_text().replace("\n", "\\n")
    assert not [m for m in run_checks(tags=["audit"]) if m.id in ("audit.E005", "audit.E006")]


def test_verify_audit_refuses_an_unreadable_public_key(tmp_path):
    with pytest.raises(CommandError, match="--public-key .*missing.pem"):
        call_command("verify_audit", "--public-key", str(tmp_path / "missing.pem"), stdout=io.StringIO())
    (tmp_path / "bad.pem").write_text("hello")
    with pytest.raises(CommandError, match="holds no PEM public key"):
        call_command("verify_audit", "--public-key", str(tmp_path / "bad.pem"), stdout=io.StringIO())
    assert AuditTrail.objects.count() == 0


def test_the_admin_shows_who_signed_each_seal_and_the_keys_read_only(portal, admin_user, tmp_path, settings):
    key = new_key(tmp_path, "a")
    settings.AUDIT_SIGNING_KEY_FILE = str(key)
    make_rows(1)
    link = integrity.seal()
    listed = AuditSigningKey.objects.get()
    c = portal(admin_user)
    page = c.get("/admin/audit/auditseal/")
    assert page.status_code == 200 and f"{link.key_id[:12]}…".encode() in page.content
    keys = c.get("/admin/audit/auditsigningkey/")
    assert keys.status_code == 200 and listed.key_id.encode() in keys.content
    assert c.get("/admin/audit/auditsigningkey/add/").status_code == 403
    assert c.post(f"/admin/audit/auditsigningkey/{listed.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditSigningKey.objects.filter(pk=listed.pk).exists()

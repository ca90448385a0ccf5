"""export_audit --pack and audit.verify_pack: a pack an outsider verifies with the public key alone."""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import zipfile

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError

from audit import verify_pack
from audit.models import ActivityLog, AuditTrail, UpdateHistory
from audit.operations import integrity, signing

from .integrity_helpers import make_rows

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _keys(tmp_path, settings):
    settings.AUDIT_SEAL_FILE = str(tmp_path / "seal.json")
    settings.AUDIT_SEAL_KEY = "k" * 40
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def public_key(tmp_path):
    path = tmp_path / "seal-public.pem"
    path.write_text(signing.current_public_key().pem)
    return path


def pack_of(tmp_path, *flags, name="pack.zip"):
    target = tmp_path / name
    out = io.StringIO()
    call_command("export_audit", "--pack", str(target), *flags, stdout=out, stderr=io.StringIO())
    return target, out.getvalue()


def verify(pack, *keys, capsys):
    code = verify_pack.main([str(pack), *[a for k in keys for a in ("--public-key", str(k))]])
    return code, capsys.readouterr().out


def rewrite_member(pack, member, change):
    """A copy of the pack with one member changed by ``change(bytes) -> bytes``."""
    with zipfile.ZipFile(pack) as src:
        items = [(info.filename, src.read(info.filename)) for info in src.infolist()]
    altered = pack.with_name("altered.zip")
    with zipfile.ZipFile(altered, "w") as dst:
        for name, data in items:
            dst.writestr(name, change(data) if name == member else data)
    return altered


def members(pack) -> dict[str, bytes]:
    with zipfile.ZipFile(pack) as z:
        return {info.filename: z.read(info.filename) for info in z.infolist()}


def lines(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.decode().splitlines()]


@pytest.fixture
def dossier(personas, tmp_path):
    """MR001 with a comment and an attachment, sealed; another request's rows beside it."""
    from maintenance import services

    request = services.create_request(actor=personas["staff"], vessel="MV Aurora", title="Bilge pump",
                                      reason="leak at frame 12")
    services.approve_request(request_obj=request, actor=personas["engineer"], reason="urgent enough")
    comment = services.add_comment(request_obj=request, actor=personas["engineer"], body="Parts ordered")
    upload = SimpleUploadedFile("survey.pdf", b"%PDF-1.4 hull survey", content_type="application/pdf")
    attachment = services.add_attachment(request_obj=request, actor=personas["staff"], uploaded_file=upload)
    other = services.create_request(actor=personas["other_staff"], vessel="MV Borealis", title="Radar")
    integrity.seal()
    return {"request": request, "comment": comment, "attachment": attachment, "other": other}


def test_a_pack_of_a_request_carries_its_rows_proofs_seals_keys_and_dossier(dossier, tmp_path, public_key,
                                                                             capsys):
    request, other = dossier["request"], dossier["other"]
    pack, out = pack_of(tmp_path, "--entity-id", request.code)
    assert re.search(r"Wrote pack .*pack\.zip: \d+ audit_trail and \d+ update_history rows in 1 seals", out)
    files = members(pack)
    with zipfile.ZipFile(pack) as z:
        assert {info.compress_type for info in z.infolist()} == {zipfile.ZIP_STORED}
    assert {"manifest.json", "manifest.sig", "seals.json", "README.txt", "rows/audit_trail.jsonl",
            "rows/audit_trail.csv", "rows/update_history.jsonl", "rows/update_history.csv",
            "dossier/entity.json", "dossier/comments.jsonl", "dossier/attachments.jsonl"} <= set(files)
    key_id = signing.current_public_key().key_id
    assert files[f"keys/{key_id}.pem"].decode() == public_key.read_text()

    trail = lines(files["rows/audit_trail.jsonl"])
    by_type = {(e["record"]["entity_type"], e["record"]["entity_id"]) for e in trail}
    # the request's own rows and those of its comment and attachment, never the other request's
    assert (("maintenance_request", request.code) in by_type and ("comment", str(dossier["comment"].pk)) in by_type
            and ("attachment", str(dossier["attachment"].pk)) in by_type)
    assert not any(entity_id == other.code for _, entity_id in by_type)
    expected = set(AuditTrail.objects.filter(entity_id=request.code).values_list("id", flat=True))
    assert expected <= {e["id"] for e in trail}
    history = lines(files["rows/update_history.jsonl"])
    assert {e["id"] for e in history} == set(
        UpdateHistory.objects.filter(audit_id__in=[e["id"] for e in trail]).values_list("id", flat=True))
    assert all(e["seal"] == 1 and e["proof"] for e in trail)
    assert "Bilge pump" in files["rows/audit_trail.csv"].decode()

    manifest = json.loads(files["manifest.json"])
    assert manifest["entity"] == {"entity_type": None, "entity_id": request.code}
    assert manifest["rows"] == {"audit_trail": len(trail), "update_history": len(history)}
    for name, entry in manifest["members"].items():
        assert entry == {"sha256": hashlib.sha256(files[name]).hexdigest(), "size": len(files[name])}
    attachment = lines(files["dossier/attachments.jsonl"])[0]
    assert attachment["sha256"] == hashlib.sha256(b"%PDF-1.4 hull survey").hexdigest()
    assert attachment["name"] == "survey.pdf" and attachment["size_matches"] is True
    assert lines(files["dossier/comments.jsonl"])[0]["body"] == "Parts ordered"
    assert json.loads(files["dossier/entity.json"])["record"]["title"] == "Bilge pump"
    assert ActivityLog.objects.filter(activity="Exported audit pack", details__contains=request.code).exists()

    code, report = verify(pack, public_key, capsys=capsys)
    assert code == 0, report
    assert f"Pack verified: {len(trail) + len(history)} of {len(trail) + len(history)} rows proven against 1 " \
           "signed seals" in report


def test_one_altered_row_fails_and_is_named(dossier, tmp_path, public_key, capsys):
    pack, _ = pack_of(tmp_path, "--entity-id", dossier["request"].code)
    entries = lines(members(pack)["rows/audit_trail.jsonl"])
    victim = entries[1]

    def change(data):
        out = []
        for e in lines(data):
            if e["id"] == victim["id"]:
                e["record"]["user_id"] = "ADM001"
            out.append(json.dumps(e))
        return ("\n".join(out) + "\n").encode()

    altered = rewrite_member(pack, "rows/audit_trail.jsonl", change)
    code, report = verify(altered, public_key, capsys=capsys)
    assert code == 1
    assert "FAILED rows/audit_trail.jsonl: its SHA-256 differs from the signed manifest" in report
    assert f"FAILED audit_trail id {victim['id']}: does not match seal #1 (the row differs from what was sealed)" \
        in report
    assert report.count("FAILED audit_trail id") == 1


def test_a_row_tampered_in_the_database_before_export_fails_in_the_pack(dossier, tmp_path, public_key, capsys):
    from .integrity_helpers import raw

    row = AuditTrail.objects.filter(entity_id=dossier["request"].code).order_by("id").first()
    raw("UPDATE audit_trail SET change_reason = %s WHERE id = %s", ["rewritten", row.pk])
    pack, _ = pack_of(tmp_path, "--entity-id", dossier["request"].code)
    code, report = verify(pack, public_key, capsys=capsys)
    assert code == 1
    assert f"FAILED audit_trail id {row.pk}: does not match seal #1" in report
    assert "rows/" not in report  # the manifest is intact: the row itself differs from its seal


def test_a_pack_checked_with_another_key_or_a_forged_manifest_fails(dossier, tmp_path, public_key, capsys):
    pack, _ = pack_of(tmp_path, "--entity-id", dossier["request"].code)
    stranger = tmp_path / "stranger.pem"
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    stranger.write_text(signing.public_pem(Ed25519PrivateKey.generate().public_key()))
    code, report = verify(pack, stranger, capsys=capsys)
    assert code == 1 and "FAILED manifest.json: the signature does not verify (no given key has its key id)" in report

    def recount(data):
        manifest = json.loads(data)
        manifest["rows"]["audit_trail"] = 0
        return json.dumps(manifest).encode()

    code, report = verify(rewrite_member(pack, "manifest.json", recount), public_key, capsys=capsys)
    assert code == 1 and "FAILED manifest.json: the signature does not verify (a given key has its key id)" in report


def test_a_forged_seal_in_the_pack_fails(dossier, tmp_path, public_key, capsys):
    pack, _ = pack_of(tmp_path, "--entity-id", dossier["request"].code)

    def forge(data):
        seals = json.loads(data)
        seals["links"][0]["row_count"] += 1
        return json.dumps(seals).encode()

    code, report = verify(rewrite_member(pack, "seals.json", forge), public_key, capsys=capsys)
    assert code == 1
    assert "FAILED seal #1: its content does not hash to its chain hash (seal altered)" in report


def test_rows_written_after_the_last_seal_are_left_out_and_counted(dossier, tmp_path, public_key, capsys):
    from maintenance import services

    services.add_comment(request_obj=dossier["request"], actor=dossier["request"].requested_by, body="Any news?")
    pack, out = pack_of(tmp_path, "--entity-id", dossier["request"].code)
    manifest = json.loads(members(pack)["manifest.json"])
    assert manifest["left_out"]["not sealed yet"] >= 1
    assert "left out:" in out and "not sealed yet" in out
    assert verify(pack, public_key, capsys=capsys)[0] == 0
    # --seal seals first, so the same export proves them
    sealed, out = pack_of(tmp_path, "--entity-id", dossier["request"].code, "--seal", name="sealed.zip")
    assert json.loads(members(sealed)["manifest.json"])["left_out"] == {}
    assert "Sealed #2" in out
    code, report = verify(sealed, public_key, capsys=capsys)
    assert code == 0 and "against 2 signed seals" in report


def test_filters_hours_from_to_and_user(tmp_path, public_key, capsys):
    make_rows(3, user="PE001")
    make_rows(2, user="ST001", entity_prefix="EMG")
    integrity.seal()
    pack, _ = pack_of(tmp_path, "--user-id", "ST001", "--hours", "1")
    trail = lines(members(pack)["rows/audit_trail.jsonl"])
    assert len(trail) == 2 and {e["record"]["user_id"] for e in trail} == {"ST001"}
    assert verify(pack, public_key, capsys=capsys)[0] == 0
    ranged, _ = pack_of(tmp_path, "--from", "2000-01-01", "--to", "2000-02-01", name="empty.zip")
    manifest = json.loads(members(ranged)["manifest.json"])
    assert manifest["rows"] == {"audit_trail": 0, "update_history": 0}
    assert manifest["filters"]["from"] == "2000-01-01T00:00:00+00:00"


@pytest.mark.parametrize(("flags", "message"), [
    (["--hours", "2", "--from", "2025-01-01"], "--from: Give either hours or from/to, not both."),
    (["--from", "yesterday"], "is not an ISO 8601 date-time"),
    (["--from", "2025-02-01", "--to", "2025-01-01"], "--to: to must be after from."),
    (["--hours", "0"], "--hours:"),
])
def test_bad_pack_flags_are_refused_and_nothing_is_written(db, tmp_path, flags, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        pack_of(tmp_path, *flags)
    assert not (tmp_path / "pack.zip").exists()
    assert not ActivityLog.objects.filter(activity="Exported audit pack").exists()


def test_an_existing_pack_is_never_overwritten_and_csv_flags_stay_csv_only(db, tmp_path):
    (tmp_path / "pack.zip").write_bytes(b"old")
    with pytest.raises(CommandError, match="exists; a pack is never overwritten"):
        pack_of(tmp_path)
    assert (tmp_path / "pack.zip").read_bytes() == b"old"
    with pytest.raises(CommandError, match="--from, --to and --seal apply to --pack only"):
        call_command("export_audit", "--output", str(tmp_path / "x.csv"), "--seal", stdout=io.StringIO())


def test_the_verifier_reports_usage_errors_with_status_2(tmp_path, capsys):
    assert verify_pack.main([str(tmp_path / "missing.zip"), "--public-key", str(tmp_path / "none.pem")]) == 2
    assert "verify_pack: --public-key" in capsys.readouterr().err
    (tmp_path / "key.pem").write_text("not a key")
    (tmp_path / "x.zip").write_bytes(b"PK")
    assert verify_pack.main([str(tmp_path / "x.zip"), "--public-key", str(tmp_path / "key.pem")]) == 2
    with pytest.raises(SystemExit) as exit_info:
        verify_pack.main([str(tmp_path / "x.zip")])
    assert exit_info.value.code == 2


# -- the API ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/realtime/seals/public-key", "/api/realtime/seals/public-keys",
                                  "/api/realtime/export-pack"])
def test_evidence_endpoints_are_for_admins_and_port_engineers(api, anon_api, personas, path):
    assert anon_api.get(path).status_code == 401
    response = api(personas["staff"]).get(path)
    assert response.status_code == 403
    assert response.json()["success"] is False
    assert api(personas["engineer"]).get(path).status_code == 200
    assert api(personas["admin"]).get(path).status_code == 200


def test_the_public_key_endpoint_answers_the_current_key_as_pem_and_is_recorded(api, personas):
    make_rows(1)
    integrity.seal()
    response = api(personas["engineer"]).get("/api/realtime/seals/public-key")
    key = signing.current_public_key()
    assert response["Content-Type"].startswith("application/x-pem-file")
    assert response.content.decode() == key.pem and response["X-Key-Id"] == key.key_id
    assert signing.load_public_keys(response.content)[0].key_id == key.key_id
    assert ActivityLog.objects.filter(user_id="PE001", activity="Viewed seal public key").count() == 1
    listed = api(personas["admin"]).get("/api/realtime/seals/public-keys").json()
    assert listed["current_key_id"] == key.key_id
    assert [(k["key_id"], k["first_seq"], k["public_key"]) for k in listed["keys"]] == [(key.key_id, 1, key.pem)]


def test_the_pack_download_verifies_offline_and_bad_parameters_are_400(api, personas, tmp_path, public_key,
                                                                        capsys):
    make_rows(2, user="ST001")
    integrity.seal()
    client = api(personas["engineer"])
    response = client.get("/api/realtime/export-pack", {"user_id": "ST001", "hours": "2"})
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert re.match(r'attachment; filename="audit-pack_\d{8}T\d{6}Z\.zip"', response["Content-Disposition"])
    pack = tmp_path / "download.zip"
    pack.write_bytes(b"".join(response.streaming_content))
    code, report = verify(pack, public_key, capsys=capsys)
    assert code == 0 and "4 of 4 rows proven" in report  # 2 trail rows and their 2 field rows
    manifest = json.loads(members(pack)["manifest.json"])
    assert manifest["created_by"] == "PE001" and manifest["filters"] == {"hours": 2.0, "user_id": "ST001"}
    assert ActivityLog.objects.filter(user_id="PE001", activity="Exported audit pack").count() == 1
    for query, field in [({"hours": "0"}, "hours"), ({"from": "soon"}, "from"), ({"hours": "1", "from": "2025-01-01"},
                                                                                 "from")]:
        bad = client.get("/api/realtime/export-pack", query)
        assert bad.status_code == 400, query
        assert field in bad.json()["error"]["fields"]


def test_without_a_signing_key_in_production_the_download_is_503_not_500(api, personas, settings):
    settings.DEBUG = False
    settings.AUDIT_DEVELOPMENT_KEYS = False
    settings.AUDIT_SIGNING_KEY_FILE = ""
    settings.AUDIT_SIGNING_KEY = ""
    response = api(personas["admin"]).get("/api/realtime/export-pack")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "signing_unavailable"
    assert api(personas["admin"]).get("/api/realtime/seals/public-key").status_code == 503


# -- the standalone verifier, in a virtual environment holding only cryptography ---------------------


def _pinned_cryptography() -> str:
    for line in (settings.BASE_DIR / "requirements.txt").read_text().splitlines():
        if line.startswith("cryptography=="):
            return line.strip()
    raise AssertionError("cryptography is not pinned in requirements.txt")


@pytest.fixture(scope="session")
def auditor_python(tmp_path_factory):
    """A fresh virtual environment with only ``cryptography`` (from pip's cache or PyPI), made
    once and shared by the test workers; skipped when the package cannot be installed."""
    root = tmp_path_factory.getbasetemp().parent
    venv_dir = root / "auditor-venv"
    python = venv_dir / "bin" / "python"
    with open(root / "auditor-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv_dir / "ready").exists():
            shutil.rmtree(venv_dir, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(venv_dir)], check=True, timeout=120)
            installed = subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                 _pinned_cryptography()], capture_output=True, text=True, timeout=300)
            if installed.returncode != 0:
                pytest.skip(f"cryptography could not be installed in a fresh venv: {installed.stderr[-300:]}")
            (venv_dir / "ready").write_text("ok")
    return python


def run_auditor(python, tmp_path, pack, key):
    """python -m audit.verify_pack in a directory holding only audit/__init__.py and audit/verify_pack.py."""
    workdir = tmp_path / "auditor"
    (workdir / "audit").mkdir(parents=True, exist_ok=True)
    for name in ("__init__.py", "verify_pack.py"):
        shutil.copy(settings.BASE_DIR / "audit" / name, workdir / "audit" / name)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    return subprocess.run([str(python), "-s", "-m", "audit.verify_pack", str(pack), "--public-key", str(key)],
                          cwd=workdir, env=env, capture_output=True, text=True, timeout=120)


def test_the_standalone_verifier_in_a_fresh_venv_passes_the_pack_and_names_an_altered_row(
        auditor_python, dossier, tmp_path, public_key):
    no_django = subprocess.run([str(auditor_python), "-c", "import django"], capture_output=True, timeout=60)
    assert no_django.returncode != 0  # the auditor's environment has no Django
    pack, _ = pack_of(tmp_path, "--entity-id", dossier["request"].code)
    result = run_auditor(auditor_python, tmp_path, pack, public_key)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Pack verified:" in result.stdout

    entries = lines(members(pack)["rows/update_history.jsonl"])
    victim = entries[-1]

    def change(data):
        out = []
        for e in lines(data):
            if e["id"] == victim["id"]:
                e["record"]["new_value"] = "approved by nobody"
            out.append(json.dumps(e))
        return ("\n".join(out) + "\n").encode()

    result = run_auditor(auditor_python, tmp_path, rewrite_member(pack, "rows/update_history.jsonl", change),
                         public_key)
    assert result.returncode == 1
    assert f"FAILED update_history id {victim['id']}: does not match seal #1" in result.stdout
    assert "Traceback" not in result.stderr
    usage = run_auditor(auditor_python, tmp_path, tmp_path / "no-such.zip", public_key)
    assert usage.returncode == 2 and "no such file" in usage.stderr


def test_a_pack_without_its_manifest_or_with_an_extra_member_fails(dossier, tmp_path, public_key, capsys):
    pack, _ = pack_of(tmp_path, "--entity-id", dossier["request"].code)
    files = members(pack)
    stripped = tmp_path / "stripped.zip"
    with zipfile.ZipFile(stripped, "w") as z:
        for name, data in files.items():
            if name != "manifest.sig":
                z.writestr(name, data)
    code, report = verify(stripped, public_key, capsys=capsys)
    assert code == 1 and "FAILED the pack has no manifest.sig" in report
    extra = tmp_path / "extra.zip"
    with zipfile.ZipFile(extra, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
        z.writestr("rows/smuggled.jsonl", b"{}\n")
    code, report = verify(extra, public_key, capsys=capsys)
    assert code == 1 and "FAILED rows/smuggled.jsonl: in the pack but not in the signed manifest" in report

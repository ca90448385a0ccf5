"""The documented production environment passes Django's deployment checks, and the transport
settings are read from the environment (issue 11.8). The environment is the block marked
``<!-- production-env -->`` in docs/production.md, run as written with its placeholders replaced by
generated secrets, so the documentation and this test cannot drift apart."""

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "production.md"


def documented_environment():
    text = DOC.read_text()
    match = re.search(r"<!-- production-env -->\s*```sh\n(.*?)```", text, re.S)
    assert match, "docs/production.md has no <!-- production-env --> block"
    pairs = {}
    for line in match.group(1).splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            pairs[name] = value
    return pairs


@pytest.fixture
def production_env(tmp_path):
    key = tmp_path / "audit-signing.pem"
    key.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    env = documented_environment()
    env.update({
        "SECRET_KEY": secrets.token_urlsafe(50),
        "AUDIT_SEAL_KEY": secrets.token_hex(32),
        "AUDIT_SIGNING_KEY_FILE": str(key),
        "AUDIT_SEAL_FILE": str(tmp_path / "audit-seal.json"),
        # the check needs no database: a local SQLite file keeps the test off the documented host
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    })
    return env


def manage(env, *args):
    base = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"),
            "ENV_FILE": "/nonexistent", "DJANGO_SETTINGS_MODULE": "marine_center.settings"}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env},
                          capture_output=True, text=True, timeout=120)


def test_documented_production_environment_passes_check_deploy(production_env):
    done = manage(production_env, "check", "--deploy", "--fail-level", "WARNING")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout


def test_check_deploy_fails_when_the_transport_settings_are_left_out(production_env):
    for name in ("SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"):
        production_env.pop(name)
    done = manage(production_env, "check", "--deploy", "--fail-level", "WARNING")
    assert done.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in done.stderr + done.stdout


SHOW = ("from django.conf import settings as s; print(s.SECURE_PROXY_SSL_HEADER, s.SECURE_SSL_REDIRECT, "
        "s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD, "
        "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SESSION_COOKIE_SAMESITE)")


def test_transport_settings_are_read_from_the_environment(production_env):
    done = manage(production_env, "shell", "-c", SHOW)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[-2] == "('HTTP_X_FORWARDED_PROTO', 'https') True 31536000 True True True True Lax"


def test_no_proxy_header_is_believed_unless_configured(production_env):
    production_env.pop("SECURE_PROXY_SSL_HEADER")
    done = manage(production_env, "shell", "-c", SHOW)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[-2].startswith("None True 31536000")

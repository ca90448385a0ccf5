"""Settings come from the environment; production refuses to start without a secret key."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _check(env_overrides):
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG", "TESTING", "DATABASE_URL")}
    env["ENV_FILE"] = "/nonexistent/.env"  # a developer's .env must not change what is tested here
    env.update(env_overrides)
    env["DJANGO_SETTINGS_MODULE"] = "marine_center.settings"
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.conf import settings; "
         "print(settings.DATABASES['default']['ENGINE'], settings.DEBUG, settings.TIME_ZONE, settings.USE_TZ, "
         "settings.AUDIT_DEVELOPMENT_KEYS, settings.PASSWORD_HASHERS[0].rsplit('.', 1)[-1])"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )


def test_production_refuses_to_start_without_a_secret_key():
    result = _check({"DEBUG": "0"})
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_debug_uses_a_throwaway_key_and_sqlite_under_the_project_by_default():
    result = _check({"DEBUG": "1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.sqlite3", "True", "UTC", "True", "True", "PBKDF2PasswordHasher"]


def test_database_url_selects_postgresql():
    result = _check({"SECRET_KEY": "s" * 50, "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/anything"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:2] == ["django.db.backends.postgresql", "False"]
    # production: no development keys, the real password hasher
    assert result.stdout.split()[4:] == ["False", "PBKDF2PasswordHasher"]


def test_no_variable_relaxes_production_the_old_testing_switch_included():
    result = _check({"DEBUG": "0", "TESTING": "1"})
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr
    result = _check({"SECRET_KEY": "s" * 50, "TESTING": "1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[4:] == ["False", "PBKDF2PasswordHasher"]


def test_a_dot_env_file_fills_in_what_the_environment_does_not_set(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("DEBUG=1\nSECRET_KEY=" + "k" * 50 + "\nTIME_ZONE_IGNORED=1\n")
    result = _check({"ENV_FILE": str(env_file)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[1] == "True"
    result = _check({"ENV_FILE": str(env_file), "DEBUG": "0"})  # the environment wins over the file
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[1] == "False"


def test_the_suite_runs_on_the_test_settings(settings):
    import os as _os

    assert _os.environ["DJANGO_SETTINGS_MODULE"] == "marine_center.settings_test"
    assert settings.AUDIT_DEVELOPMENT_KEYS is True and settings.DEBUG is False


def test_the_old_lockout_variable_names_are_still_read():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACCOUNTS_LOCKOUT", "AUDIT_LOCKOUT"))}
    env.update({"ENV_FILE": "/nonexistent/.env", "DEBUG": "1", "DJANGO_SETTINGS_MODULE": "marine_center.settings",
                "AUDIT_LOCKOUT_THRESHOLD": "7", "AUDIT_LOCKOUT_MINUTES": "9", "ACCOUNTS_LOCKOUT_MINUTES": "11"})
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from accounts import conf; "
         "print(conf.lockout_threshold(), conf.lockout_ceiling(), conf.lockout_minutes())"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["7", "50", "11"]  # the new name wins where both are set

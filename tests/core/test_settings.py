"""Settings come from the environment; production refuses to start without a secret key."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _check(env_overrides):
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG", "TESTING", "DATABASE_URL")}
    env.update(env_overrides)
    env["DJANGO_SETTINGS_MODULE"] = "marine_center.settings"
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.conf import settings; "
         "print(settings.DATABASES['default']['ENGINE'], settings.DEBUG, settings.TIME_ZONE, settings.USE_TZ)"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )


def test_production_refuses_to_start_without_a_secret_key():
    result = _check({"DEBUG": "0"})
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_debug_uses_a_throwaway_key_and_sqlite_under_the_project_by_default():
    result = _check({"DEBUG": "1"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.sqlite3", "True", "UTC", "True"]


def test_database_url_selects_postgresql():
    result = _check({"SECRET_KEY": "s" * 50, "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/anything"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:2] == ["django.db.backends.postgresql", "False"]

"""The first hour in a fresh clone: after the Makefile writes .env (as `make run` does), every
manage.py command works in the checkout with no variable set."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("git") is None or shutil.which("make") is None,
                                reason="needs git and make")


def _bare_env():
    """The environment of a newcomer's shell: none of the project's variables."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("DJANGO_", "DATABASE_", "AUDIT_", "ACCOUNTS_", "EMAIL_", "TASKS_"))
            and k not in ("DEBUG", "SECRET_KEY", "TESTING", "ENV_FILE", "PORT", "REDIS_URL", "CACHE_URL")}


def test_after_make_writes_env_shell_and_createsuperuser_work_with_no_variable_set(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120)
    env = _bare_env()
    made = subprocess.run(["make", "--no-print-directory", ".env"], cwd=clone, env=env, capture_output=True,
                          text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    assert "Wrote .env" in made.stdout
    dotenv = (clone / ".env").read_text()
    assert "DEBUG=1" in dotenv and len(dotenv.split("SECRET_KEY=")[1].strip()) >= 50
    again = subprocess.run(["make", "--no-print-directory", ".env"], cwd=clone, env=env, capture_output=True,
                           text=True, timeout=60)
    assert again.returncode == 0 and "Wrote .env" not in again.stdout
    assert (clone / ".env").read_text() == dotenv  # written once, never overwritten

    python = sys.executable  # the suite's interpreter stands for the clone's .venv (same requirements)

    def manage(*args, **extra):
        return subprocess.run([python, "manage.py", *args], cwd=clone, env={**env, **extra}, capture_output=True,
                              text=True, timeout=300)

    (clone / "var").mkdir()  # as `make migrate` (part of make run) does
    migrated = manage("migrate", "--noinput", "--verbosity", "0")
    assert migrated.returncode == 0, migrated.stderr
    created = manage("createsuperuser", "--noinput", DJANGO_SUPERUSER_USER_ID="ADM777",
                     DJANGO_SUPERUSER_FULL_NAME="Ada Newcomer", DJANGO_SUPERUSER_PASSWORD="Harbour-Newcomer-2026",
                     DJANGO_SUPERUSER_EMAIL="ada@example.org")
    assert created.returncode == 0, created.stderr
    shell = manage("shell", "-c", "from accounts.models import User; u = User.objects.get(user_id='ADM777'); "
                                  "print(u.role, u.is_superuser, u.approval_status)")
    assert shell.returncode == 0, shell.stderr
    assert shell.stdout.strip().splitlines()[-1].split() == ["admin", "True", "approved"]
    assert "KeyError" not in shell.stderr and "SECRET_KEY" not in shell.stderr

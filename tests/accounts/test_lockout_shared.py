"""The lock-out's counters are shared by every process: failures counted by
another process (another web worker) lock logins in this one, through the
default database cache and through Redis (``CACHE_URL``, Redis db 6 here)."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import environ
import pytest
from django.db import connection

from accounts import lockout

ROOT = Path(__file__).resolve().parents[2]
# a Redis database of this suite's own (override with LOCKOUT_TEST_REDIS_URL)
REDIS_URL = os.environ.get("LOCKOUT_TEST_REDIS_URL", "redis://127.0.0.1:6379/6")


def _fail_five_times_elsewhere(user_id, ip, **env):
    code = (f"from accounts import lockout\n"
            f"for _ in range(5): lockout.record_failure({user_id!r}, {ip!r})\n")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "marine_center.settings_test", **env}
    done = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr


def _unique_ip():
    return f"2001:db8::{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}"


def _unique_id():
    """A user id of this run's own: runs of the suite share the cache, and
    would otherwise add up to the per-id ceiling."""
    return f"LK{uuid.uuid4().hex[:8].upper()}"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_failures_in_another_process_lock_here_through_the_database_cache(db):
    s = connection.settings_dict
    url = f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"
    ip, user_id = _unique_ip(), _unique_id()
    assert lockout.locked_until(user_id, ip) is None
    _fail_five_times_elsewhere(user_id, ip, DATABASE_URL=url, CACHE_URL="dbcache://django_cache")
    assert lockout.locked_until(user_id.lower(), ip) is not None


def test_failures_in_another_process_lock_here_through_redis(settings):
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis at 127.0.0.1:6379")
    settings.CACHES = {"default": environ.Env.cache_url_config(REDIS_URL)}
    ip, user_id = _unique_ip(), _unique_id()
    assert lockout.locked_until(user_id, ip) is None
    _fail_five_times_elsewhere(user_id, ip, CACHE_URL=REDIS_URL)
    assert lockout.locked_until(user_id.lower(), ip) is not None
    lockout.clear(user_id)

"""Settings for the test suite (named in pytest.ini) and the benchmarks.

The production settings with what tests need and nothing else: a throwaway
secret key, the development seal and signing keys, a fast password hasher
and plain static files. Production code reads no test switch: running the
production settings with any variable set never relaxes a rule."""

import os

# settings.py refuses to start without a secret when DEBUG is off, as production must
os.environ.setdefault("SECRET_KEY", "insecure-test-key-" + "t" * 40)

from marine_center.settings import *  # noqa: E402,F403
from marine_center.settings import STORAGES  # noqa: E402

# tests run with DEBUG off (as production) but may not hold production keys
AUDIT_DEVELOPMENT_KEYS = True
# Tests create many accounts; password hashing strength is not under test.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# no collectstatic manifest in tests
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}

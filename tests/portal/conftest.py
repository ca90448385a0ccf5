"""Fixtures for the portal tests: a small world built through the services.

- MR001: a pending request opened by ST001 (staff) with one attachment.
- EMG001: an emergency reported by ST001.
- INV001: a spare part below its minimum stock.
- ST009: a self-registered (pending) account.
"""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.ATTACHMENT_MAX_BYTES = 1024
    settings.ATTACHMENT_ALLOWED_EXTENSIONS = ["pdf", "png", "txt"]
    # every test logs several personas in: a fast hasher keeps the suite quick
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world(personas):
    from accounts import services as account_services
    from emergencies import services as emergency_services
    from maintenance import services as maintenance_services

    staff = personas["staff"]
    request_obj = maintenance_services.create_request(
        actor=staff, vessel="MV Aurora", title="Replace bilge pump", category="engine", priority="high"
    )
    attachment = maintenance_services.add_attachment(
        request_obj=request_obj, actor=staff, uploaded_file=SimpleUploadedFile("pump.txt", b"pump log")
    )
    emergency = emergency_services.report_emergency(
        actor=staff, vessel="MV Aurora", emergency_type="fire", description="Galley fire", severity="high"
    )
    item = maintenance_services.create_item(
        actor=personas["admin"], part_number="P-100", name="Impeller", quantity_on_hand=1, minimum_stock=3
    )
    pending = account_services.register_user(
        user_id="ST009", password="Newbie-Pass-2025", full_name="Nina Newcomer", email="nina@example.com"
    )
    return {
        **personas,
        "request": request_obj,
        "attachment": attachment,
        "emergency": emergency,
        "item": item,
        "pending": pending,
    }


@pytest.fixture
def as_(portal, world):
    """as_("staff") -> a test client logged in as that persona; as_(None) is anonymous."""
    cache = {}

    def make(who):
        if who not in cache:
            cache[who] = portal(world[who] if who else None)
        return cache[who]

    return make

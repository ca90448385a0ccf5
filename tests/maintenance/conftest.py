"""Fixtures for the maintenance tests: requests in each status, inventory
items, and a throwaway MEDIA_ROOT so uploads never touch var/media."""

import pytest


@pytest.fixture(autouse=True)
def _isolated_settings(settings, tmp_path):
    # a fast hasher: these tests create several accounts each; passwords are not under test here
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.ATTACHMENT_MAX_BYTES = 1024
    settings.ATTACHMENT_ALLOWED_EXTENSIONS = ["pdf", "png", "txt", "jpg"]


@pytest.fixture
def make_request(db):
    """make_request(requester, status="pending", assignee=None, **fields) built
    through the services, moved to ``status`` by a manager."""
    from accounts.models import User
    from maintenance import services

    def make(requester, *, status="pending", assignee=None, **fields):
        fields.setdefault("vessel", "MV Aurora")
        fields.setdefault("title", "Replace bilge pump")
        # four eyes: the approving manager is never the requester
        manager = User.objects.filter(role__in=["admin", "port_engineer"]).exclude(pk=requester.pk).first() or User.objects.create_user(
            user_id="PE900", password="Harbour-Pass-2025", role="port_engineer"
        )
        obj = services.create_request(actor=requester, **fields)
        if assignee is not None:
            services.assign_request(request_obj=obj, actor=manager, assignee=assignee)
        if status == "pending":
            return obj
        if status == "rejected":
            return services.reject_request(request_obj=obj, actor=manager, reason="Not needed")
        if status == "cancelled":
            return services.cancel_request(request_obj=obj, actor=manager)
        services.approve_request(request_obj=obj, actor=manager)
        if status == "approved":
            return obj
        services.start_request(request_obj=obj, actor=manager)
        if status == "in_progress":
            return obj
        services.complete_request(request_obj=obj, actor=manager)
        assert status == "completed", status
        return obj

    return make


@pytest.fixture
def make_item(db):
    from accounts.models import User
    from maintenance import services

    def make(part_number="P-100", *, quantity_on_hand=10, minimum_stock=2, **fields):
        actor = User.objects.filter(role="admin").first() or User.objects.create_user(
            user_id="ADM900", password="Harbour-Pass-2025", role="admin"
        )
        fields.setdefault("name", f"Part {part_number}")
        return services.create_item(
            actor=actor,
            part_number=part_number,
            quantity_on_hand=quantity_on_hand,
            minimum_stock=minimum_stock,
            **fields,
        )

    return make


@pytest.fixture
def signals_log():
    """Collects core.signals.activity and domain_event sends during a test."""
    from core.signals import activity, domain_event

    log = {"activity": [], "domain_event": []}

    def on_activity(sender, **kwargs):
        log["activity"].append(kwargs)

    def on_event(sender, **kwargs):
        log["domain_event"].append(kwargs)

    activity.connect(on_activity, dispatch_uid="test-maintenance-activity")
    domain_event.connect(on_event, dispatch_uid="test-maintenance-event")
    yield log
    activity.disconnect(dispatch_uid="test-maintenance-activity")
    domain_event.disconnect(dispatch_uid="test-maintenance-event")

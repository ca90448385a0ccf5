"""The audit middleware: request id, IP, late actor, activity rows, and no
leak between requests (sequential, threads, asyncio)."""

import asyncio
import re
import threading

import pytest
from django.http import HttpResponse, JsonResponse
from django.test import AsyncClient, Client, override_settings
from django.urls import include, path
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.capture.writer import current_user_id
from audit.context import get_context
from audit.models import ActivityLog, AuditTrail


def echo(request):
    ctx = get_context()
    return JsonResponse({"request_id": ctx.request_id, "ip": ctx.ip_address, "ua": ctx.user_agent,
                         "method": ctx.method, "path": ctx.path, "actor": current_user_id()})


async def aecho(request):
    await asyncio.sleep(0.01)
    return echo(request)


def page(request):
    return HttpResponse("<html><body>ok</body></html>", content_type="text/html")


class RenameInventory(APIView):
    """A plain save() inside a DRF view: no service names the actor, so the
    Bearer user must be resolved late from the request."""

    def patch(self, request, code):
        from maintenance.models import InventoryItem

        item = InventoryItem.objects.get(code=code)
        item.name = request.data["name"]
        from audit.context import audit_context

        with audit_context(reason=request.data.get("change_reason", "")):
            item.save()
        return Response({"ok": True})


urlpatterns = [
    path("echo/", echo),
    path("aecho/", aecho),
    path("portal-page/", page),
    path("health/", page),
    path("api/test-items/<str:code>/", RenameInventory.as_view()),
    path("", include("marine_center.urls")),
]

pytestmark = [pytest.mark.urls(__name__)]


def test_well_formed_request_id_is_kept_and_echoed(client):
    response = client.get("/echo/", HTTP_X_REQUEST_ID="edge-42:abc.DEF_1")
    assert response["X-Request-ID"] == "edge-42:abc.DEF_1"
    assert response.json()["request_id"] == "edge-42:abc.DEF_1"


@pytest.mark.parametrize("bad", ["has space", "x" * 65, "semi;colon", "nul\x00byte", "<script>"])
def test_malformed_request_id_is_replaced(client, bad):
    response = client.get("/echo/", HTTP_X_REQUEST_ID=bad)
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])
    assert response.json()["request_id"] == response["X-Request-ID"]


def test_generated_ids_differ_and_context_is_gone_after_the_request(client):
    first = client.get("/echo/")["X-Request-ID"]
    second = client.get("/echo/")["X-Request-ID"]
    assert first != second
    ctx = get_context()
    assert (ctx.request_id, ctx.request, ctx.ip_address) == ("", None, None)


def test_context_carries_ip_agent_method_path_and_anonymous_actor(client):
    data = client.get("/echo/", REMOTE_ADDR="198.51.100.4", HTTP_USER_AGENT="Mozilla/5.0 " + "x" * 400,
                      HTTP_X_FORWARDED_FOR="1.1.1.1").json()
    assert data["ip"] == "198.51.100.4"  # spoofed header ignored: no trusted proxy
    assert data["ua"].startswith("Mozilla/5.0") and len(data["ua"]) <= 255
    assert (data["method"], data["path"], data["actor"]) == ("GET", "/echo/", "anonymous")


def test_the_agent_and_the_path_are_cut_to_the_activity_columns_lengths(rf):
    from audit import middleware

    request = rf.get("/" + "p" * 900, HTTP_USER_AGENT="Mozilla/5.0 " + "x" * 900)
    request.audit_request_id = "r1"
    ctx = middleware.context_for(request)
    assert len(ctx.user_agent) == ActivityLog._meta.get_field("user_agent").max_length
    assert len(ctx.path) == ActivityLog._meta.get_field("path").max_length
    assert ctx.user_agent.startswith("Mozilla/5.0") and ctx.path.startswith("/ppp")


@override_settings(AUDIT_TRUSTED_PROXIES=["10.0.0.0/8"])
def test_trusted_proxy_hop(client):
    data = client.get("/echo/", REMOTE_ADDR="10.1.2.3", HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.8").json()
    assert data["ip"] == "198.51.100.8"


@pytest.mark.django_db
def test_logged_in_user_is_the_actor_and_next_request_does_not_inherit_it(portal, staff):
    logged_in = portal(staff)
    assert logged_in.get("/echo/").json()["actor"] == "ST001"
    assert Client().get("/echo/").json()["actor"] == "anonymous"


@pytest.mark.django_db
def test_page_visit_is_logged_with_request_details(client):
    response = client.get("/portal-page/", REMOTE_ADDR="198.51.100.5", HTTP_USER_AGENT="UA/1")
    row = ActivityLog.objects.get(activity="Page visit")
    assert (row.details, row.user_id, row.ip_address, row.method, row.path, row.status_code, row.user_agent) == (
        "/portal-page/", "anonymous", "198.51.100.5", "GET", "/portal-page/", 200, "UA/1")
    assert row.request_id == response["X-Request-ID"]


@pytest.mark.django_db
def test_excluded_paths_json_and_realtime_reads_are_not_logged_by_the_middleware(client, api, engineer):
    client.get("/health/")
    client.get("/echo/")  # JSON, not a page
    client.get("/static/nothing.css")
    api(engineer).get("/api/realtime/system-events")
    assert not ActivityLog.objects.filter(activity__in=["Page visit"]).exists()
    assert not ActivityLog.objects.filter(activity__startswith="API GET").exists()


@pytest.mark.django_db
@override_settings(AUDIT_EXCLUDED_PATHS=["/portal-page/"])
def test_exclusions_come_from_settings(client):
    client.get("/portal-page/")
    assert not ActivityLog.objects.filter(activity="Page visit").exists()


@pytest.mark.django_db
def test_api_patch_with_bearer_token_records_token_user_ip_reason_everywhere(api, engineer):
    from maintenance.models import InventoryItem

    InventoryItem.objects.create(code="INV001", part_number="P-1", name="Impeller")
    response = api(engineer).patch("/api/test-items/INV001/", {"name": "Impeller, bronze",
                                                               "change_reason": "Supplier changed"},
                                   REMOTE_ADDR="198.51.100.20", HTTP_X_FORWARDED_FOR="6.6.6.6")
    assert response.status_code == 200
    trail = AuditTrail.objects.get(entity_id="INV001", action_type="update")
    assert (trail.user_id, trail.ip_address, trail.change_reason, trail.request_id) == (
        "PE001", "198.51.100.20", "Supplier changed", response["X-Request-ID"])
    assert trail.field_changes.get().new_value == "Impeller, bronze"
    activity = ActivityLog.objects.get(activity="API PATCH /api/test-items/INV001/")
    assert (activity.user_id, activity.status_code, activity.ip_address) == ("PE001", 200, "198.51.100.20")
    snapshot = InventoryItem.history.filter(code="INV001").latest("history_date")
    assert snapshot.history_user_id == engineer.pk and snapshot.history_change_reason == "Supplier changed"


@pytest.mark.django_db
def test_denied_api_write_is_still_logged(anon_api):
    response = anon_api.patch("/api/test-items/INV404/", {"name": "x"})
    assert response.status_code == 401
    row = ActivityLog.objects.get(activity="API PATCH /api/test-items/INV404/")
    assert (row.user_id, row.status_code) == ("anonymous", 401)


@pytest.mark.django_db
def test_activity_failure_never_breaks_the_response(client, monkeypatch, capsys):
    from audit import middleware
    from audit.capture import writer

    def broken(**kwargs):
        raise RuntimeError("db down")

    monkeypatch.setattr(writer, "write_activity", broken)
    before = middleware.FAILURES["request_activity"]
    response = client.get("/portal-page/")
    assert response.status_code == 200
    assert middleware.FAILURES["request_activity"] == before + 1
    assert "could not record request activity" in capsys.readouterr().err


def test_concurrent_requests_on_threads_see_only_their_own_context():
    errors = []

    def worker(n):
        c = Client()
        for i in range(15):
            rid = f"t{n}-r{i}"
            ip = f"198.51.100.{n + 1}"
            data = c.get("/echo/", HTTP_X_REQUEST_ID=rid, REMOTE_ADDR=ip).json()
            if (data["request_id"], data["ip"]) != (rid, ip):
                errors.append((rid, ip, data))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_concurrent_async_requests_see_only_their_own_context():
    async def run():
        client = AsyncClient()
        ids = [f"a{i}" for i in range(20)]
        responses = await asyncio.gather(*[client.get("/aecho/", headers={"X-Request-ID": i}) for i in ids])
        return ids, responses

    ids, responses = asyncio.run(run())
    assert [r.json()["request_id"] for r in responses] == ids
    assert [r["X-Request-ID"] for r in responses] == ids
    assert get_context().request_id == ""


@pytest.mark.django_db
def test_an_outer_disabled_context_holds_inside_the_request(api, engineer):
    from audit.context import audit_context
    from maintenance.models import InventoryItem

    with audit_context(enabled=False):
        InventoryItem.objects.create(code="INV001", part_number="P-1", name="Impeller", quantity_on_hand=3)
        response = api(engineer).patch("/api/test-items/INV001/", {"name": "Impeller, bronze"}, format="json")
    assert response.status_code == 200
    assert InventoryItem.objects.get(code="INV001").name == "Impeller, bronze"
    assert not AuditTrail.objects.filter(entity_id="INV001").exists()
    assert not ActivityLog.objects.exists()
    assert InventoryItem.history.count() == 0


@pytest.mark.django_db
def test_portal_and_api_read_refusals_are_recorded_as_access_denied(portal, api, staff):
    response = portal(staff).get("/admin/audit-log/")
    assert response.status_code == 403
    response = api(staff).get("/api/users/")
    assert response.status_code == 403
    rows = list(ActivityLog.objects.filter(activity="Access denied").order_by("id")
                .values_list("user_id", "method", "path", "status_code", "details"))
    assert rows == [
        ("ST001", "GET", "/admin/audit-log/", 403, "GET /admin/audit-log/ HTTP 403"),
        ("ST001", "GET", "/api/users/", 403, "GET /api/users/ HTTP 403"),
    ]


@pytest.mark.django_db
def test_refusals_already_recorded_elsewhere_are_not_recorded_twice(api, staff, engineer):
    # a refused API write: the middleware's "API PATCH" row, with its status
    response = api(staff).patch("/api/users/PE001/", {"full_name": "x"}, format="json")
    assert response.status_code == 403
    # a refused read of audit data: the audit API's own "Denied audit read"
    response = api(staff).get("/api/realtime/system-events")
    assert response.status_code == 403
    activities = list(ActivityLog.objects.order_by("id").values_list("activity", "status_code"))
    assert activities == [("API PATCH /api/users/PE001/", 403), ("Denied audit read", None)]

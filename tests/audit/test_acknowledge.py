"""Acknowledging a system event: over the API, from the dashboard and home page, in the admin;
the stream tells open dashboards; sealing, processing, acknowledging and verifying agree."""

import json

import pytest
from django.utils import timezone

from audit.api.stream import Audience, AuditStream, current_cursor
from audit.models import ActivityLog, SystemEvent
from audit.operations import integrity
from audit.services import log_system_event
from core.background import run_pending

pytestmark = [pytest.mark.django_db, pytest.mark.tasks]

URL = "/api/realtime/system-events/{}/acknowledge"


@pytest.fixture
def critical(db):
    return SystemEvent.objects.create(event_type="emergency_created", severity="critical", entity_type="emergency",
                                      entity_id="EMG001", event_data='{"vessel": "MV Aurora"}')


def envelope(response, status, code=None):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["success"] is False and set(body["error"]) >= {"code", "message"}
    if code:
        assert body["error"]["code"] == code
    return body["error"]


def test_a_port_engineer_acknowledges_an_event_over_the_api(api, personas, critical):
    response = api(personas["engineer"]).post(URL.format(critical.pk), {"note": "Tug on its way"}, format="json")
    assert response.status_code == 200
    event = response.json()["event"]
    assert (event["id"], event["acknowledged_by"], event["acknowledgement_note"]) == (critical.pk, "PE001",
                                                                                       "Tug on its way")
    assert event["acknowledged_at"].endswith("Z") and len(event["acknowledged_at"]) == 24
    critical.refresh_from_db()
    assert critical.acknowledged_by == "PE001" and critical.acknowledged_at is not None
    row = ActivityLog.objects.get(activity="Acknowledged system event")
    assert row.user_id == "PE001"
    assert json.loads(row.details)["event_id"] == critical.pk and json.loads(row.details)["note"] == "Tug on its way"


def test_acknowledging_twice_is_a_conflict_and_keeps_the_first(api, personas, critical):
    assert api(personas["admin"]).post(URL.format(critical.pk) + "/", {"note": "mine"}, format="json").status_code == 200
    error = envelope(api(personas["engineer"]).post(URL.format(critical.pk), {"note": "no, mine"}, format="json"), 409,
                     "conflict")
    assert "already acknowledged by ADM001" in error["message"]
    critical.refresh_from_db()
    assert (critical.acknowledged_by, critical.acknowledgement_note) == ("ADM001", "mine")


def test_acknowledge_refuses_staff_unknown_ids_and_bad_notes(api, anon_api, personas, critical):
    envelope(api(personas["staff"]).post(URL.format(critical.pk), {"note": "x"}, format="json"), 403)
    assert ActivityLog.objects.filter(user_id="ST001", activity="Denied audit read").exists()
    envelope(anon_api.post(URL.format(critical.pk), {"note": "x"}, format="json"), 401)
    envelope(api(personas["engineer"]).post(URL.format(999999), {}, format="json"), 404, "not_found")
    envelope(api(personas["engineer"]).post(URL.format("abc"), {}, format="json"), 404)
    # a digit to str.isdigit() that int() refuses: it was a 500
    envelope(api(personas["engineer"]).post(URL.format("%C2%B2"), {}, format="json"), 404)
    error = envelope(api(personas["engineer"]).post(URL.format(critical.pk), {"note": "x" * 2001}, format="json"), 400)
    assert "note" in error["fields"]
    envelope(api(personas["engineer"]).get(URL.format(critical.pk)), 405)
    critical.refresh_from_db()
    assert critical.acknowledged_at is None


def test_the_list_filters_on_processed_and_acknowledged(api, personas, critical):
    other = SystemEvent.objects.create(event_type="disk_full", severity="error", processed=True,
                                       processed_at=timezone.now())
    client = api(personas["engineer"])
    client.post(URL.format(critical.pk), {"note": "on it"}, format="json")

    def ids(query):
        return [e["id"] for e in client.get("/api/realtime/system-events?" + query).json()["events"]]

    assert ids("acknowledged=true") == [critical.pk]
    assert ids("acknowledged=false") == [other.pk]
    assert ids("processed=true") == [other.pk]
    assert ids("processed=false&acknowledged=true") == [critical.pk]
    error = envelope(client.get("/api/realtime/system-events?processed=yes"), 400)
    assert error["fields"]["processed"] == "processed must be true or false."
    envelope(client.get("/api/realtime/system-events?acknowledged="), 400)


def test_the_stream_sends_an_acknowledged_message(api, personas, critical):
    feed = AuditStream(audience=Audience(kinds=("event",)), trackers=current_cursor())
    api(personas["engineer"]).post(URL.format(critical.pk), {"note": "on it"}, format="json")
    messages = feed.poll()
    assert [m.kind for m in messages] == ["acknowledged"]
    assert (messages[0].data["id"], messages[0].data["acknowledged_by"]) == (critical.pk, "PE001")
    assert messages[0].data["acknowledged_at"].endswith("Z")
    staff_feed = AuditStream(audience=Audience(kinds=("activity",), own_user_id="ST001"), trackers=current_cursor())
    SystemEvent.objects.create(event_type="x", severity="critical")
    other = SystemEvent.objects.latest("id")
    api(personas["admin"]).post(URL.format(other.pk), {}, format="json")
    assert staff_feed.poll() == []  # staff see neither events nor others' acknowledgements


def test_the_dashboard_lists_open_critical_events_with_their_age_and_acknowledges_one(portal, personas, critical):
    client = portal(personas["engineer"])
    html = client.get("/dashboard/").content.decode()
    assert "Emergency reported" in html and "open for" in html
    assert f'action="/dashboard/events/{critical.pk}/acknowledge/"' in html
    assert "<script>" not in html  # the script is a static file
    data = client.get("/dashboard/data/").json()
    assert [e["id"] for e in data["critical_events"]] == [critical.pk]
    assert data["critical_events"][0]["age"] and data["critical_events"][0]["label"] == "Emergency reported"
    response = client.post(f"/dashboard/events/{critical.pk}/acknowledge/", {"note": "Fire team", "next": "/dashboard/"})
    assert response.status_code == 302 and response["Location"] == "/dashboard/"
    critical.refresh_from_db()
    assert (critical.acknowledged_by, critical.acknowledgement_note) == ("PE001", "Fire team")
    assert client.get("/dashboard/data/").json()["critical_events"] == []
    again = client.post(f"/dashboard/events/{critical.pk}/acknowledge/", {"next": "https://evil.example/"},
                        follow=True)
    assert again.redirect_chain[0][0] == "/dashboard/"  # never off-site
    assert "already acknowledged by PE001" in again.content.decode()
    assert portal(personas["staff"]).post(f"/dashboard/events/{critical.pk}/acknowledge/").status_code == 403
    assert client.post("/dashboard/events/999999/acknowledge/").status_code == 404
    assert client.get(f"/dashboard/events/{critical.pk}/acknowledge/").status_code == 405


def test_the_home_page_shows_open_critical_events_to_managers(portal, personas, critical):
    html = portal(personas["engineer"]).get("/").content.decode()
    assert "Open critical events" in html and "Emergency reported" in html and "open for" in html
    assert "Open critical events" not in portal(personas["staff"]).get("/").content.decode()


def test_the_admin_action_acknowledges_with_a_note(client, personas, critical):
    client.force_login(personas["admin"])
    changelist = client.get("/admin/audit/systemevent/")
    assert changelist.status_code == 200 and "Acknowledge the selected events" in changelist.content.decode()
    response = client.post("/admin/audit/systemevent/", {"action": "acknowledge_events", "_selected_action": [critical.pk],
                                                         "note": "Handled by the night shift"}, follow=True)
    assert "Acknowledged 1 event(s): #" in response.content.decode()
    critical.refresh_from_db()
    assert (critical.acknowledged_by, critical.acknowledgement_note) == ("ADM001", "Handled by the night shift")
    again = client.post("/admin/audit/systemevent/", {"action": "acknowledge_events", "_selected_action": [critical.pk],
                                                      "note": "x"}, follow=True)
    assert "Already acknowledged, left as they were" in again.content.decode()


@pytest.mark.django_db(transaction=True)
def test_sealing_processing_acknowledging_then_verifying_passes(settings, tmp_path, api, personas):
    settings.AUDIT_SEAL_FILE = str(tmp_path / "seal.json")
    event = log_system_event("emergency_created", "emergency", "EMG002", {"vessel": "MV Borealis"}, "critical")
    integrity.seal()
    run_pending()  # processed after the seal
    event.refresh_from_db()
    assert event.processed
    assert api(personas["engineer"]).post(URL.format(event.pk), {"note": "seen"}, format="json").status_code == 200
    report = integrity.verify()
    assert report.ok, report.findings
    integrity.seal()
    assert integrity.verify().ok


def test_the_openapi_schema_describes_acknowledgement_and_the_new_filters():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    ack = schema["paths"]["/api/realtime/system-events/{event_id}/acknowledge/"]["post"]
    assert set(ack["responses"]) == {"200", "400", "401", "403", "404", "409"}
    params = {p["name"] for p in schema["paths"]["/api/realtime/system-events/"]["get"]["parameters"]}
    assert {"processed", "acknowledged", "severity", "hours", "limit"} <= params
    row = schema["components"]["schemas"]["SystemEventEntry"]["properties"]
    assert {"processed_at", "acknowledged_at", "acknowledged_by", "acknowledgement_note"} <= set(row)

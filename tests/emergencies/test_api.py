"""The emergencies API: reporting, visibility, life cycle, role matrix, bad input."""

import pytest

from audit.context import get_context
from core.signals import domain_event
from emergencies import services
from emergencies.models import Emergency

pytestmark = pytest.mark.django_db

PAYLOAD = {"vessel": "MV Northern Star", "emergency_type": "fire", "description": "Smoke in the engine room",
           "location": "Berth 4", "severity": "high"}
STATUS_ORDER = ["reported", "acknowledged", "dispatched", "resolved", "closed"]
ACTIONS = ["acknowledge", "dispatch", "resolve", "close"]
# action -> statuses it may start from (SPEC: resolve also from acknowledged)
ALLOWED_FROM = {
    "acknowledge": {"reported"},
    "dispatch": {"acknowledged"},
    "resolve": {"acknowledged", "dispatched"},
    "close": {"resolved"},
}
TARGET = {"acknowledge": "acknowledged", "dispatch": "dispatched", "resolve": "resolved", "close": "closed"}


def assert_envelope(response, status, code=None, fields=()):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["success"] is False and body["error"]["message"]
    if code:
        assert body["error"]["code"] == code
    for field in fields:
        assert field in body["error"].get("fields", {}), body
    return body


@pytest.fixture
def events():
    seen = []

    def receiver(sender, **kwargs):
        seen.append({**kwargs, "reason": get_context().reason})

    domain_event.connect(receiver, dispatch_uid="test-emergency-events")
    yield seen
    domain_event.disconnect(dispatch_uid="test-emergency-events")


@pytest.fixture
def report(personas):
    """report(status="reported", by=staff, **fields) -> an Emergency walked to ``status`` through the services."""

    def make(status="reported", by=None, **fields):
        emergency = services.report_emergency(actor=by or personas["staff"], **{**PAYLOAD, **fields})
        walk = {"acknowledged": ["acknowledge"], "dispatched": ["acknowledge", "dispatch"],
                "resolved": ["acknowledge", "dispatch", "resolve"], "closed": ["acknowledge", "dispatch", "resolve", "close"]}
        for step in walk.get(status, []):
            getattr(services, f"{step}_emergency")(emergency=emergency, actor=personas["engineer"])
        emergency.refresh_from_db()
        assert emergency.status == status
        return emergency

    return make


def test_staff_reports_an_emergency(api, personas, events):
    response = api(personas["staff"]).post("/api/emergencies/", {**PAYLOAD, "change_reason": "Alarm"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["code"] == "EMG001" and body["status"] == "reported" and body["reported_by"] == "ST001"
    assert body["assigned_to"] is None and body["created_at"].endswith("Z")
    assert body["allowed_actions"] == ["edit"]
    created = [e for e in events if e["event_type"] == "emergency_created"]
    assert len(created) == 1
    assert created[0]["severity"] == "warning" and created[0]["entity_id"] == "EMG001" and created[0]["reason"] == "Alarm"


def test_a_critical_emergency_sends_a_critical_event(api, personas, events):
    response = api(personas["other_staff"]).post("/api/emergencies/", {**PAYLOAD, "severity": "critical"}, format="json")
    assert response.status_code == 201
    created = [e for e in events if e["event_type"] == "emergency_created"]
    assert [(e["severity"], e["entity_type"], e["event_data"]["severity"]) for e in created] == [
        ("critical", "emergency", "critical")
    ]


def test_staff_cannot_assign_when_reporting_but_managers_can(api, personas):
    refused = api(personas["staff"]).post("/api/emergencies/", {**PAYLOAD, "assigned_to": "PE001"}, format="json")
    assert_envelope(refused, 403)
    assert not Emergency.objects.exists()
    done = api(personas["engineer"]).post("/api/emergencies/", {**PAYLOAD, "assigned_to": "st002"}, format="json")
    assert done.status_code == 201 and done.json()["assigned_to"] == "ST002"


def test_full_life_cycle_through_the_api(api, personas, report, events):
    code = report().code
    client = api(personas["engineer"])
    stamps = {"acknowledge": "acknowledged_at", "dispatch": "dispatched_at", "resolve": "resolved_at",
              "close": "closed_at"}
    for action in ACTIONS:
        response = client.post(f"/api/emergencies/{code}/{action}/", {"change_reason": f"{action} now"}, format="json")
        assert response.status_code == 200, response.content
        assert response.json()["status"] == TARGET[action]
        assert response.json()[stamps[action]].endswith("Z")
    moves = [(e["event_type"], e["reason"]) for e in events if e["event_type"] != "emergency_created"]
    assert moves == [(f"emergency_{TARGET[a]}", f"{a} now") for a in ACTIONS]
    assert client.get(f"/api/emergencies/{code}/").json()["allowed_actions"] == []


def test_resolve_straight_from_acknowledged(api, personas, report):
    code = report("acknowledged").code
    response = api(personas["admin"]).post(f"/api/emergencies/{code}/resolve/")
    assert response.status_code == 200 and response.json()["status"] == "resolved"


LEGAL = [(s, a) for a in ACTIONS for s in STATUS_ORDER if s in ALLOWED_FROM[a]]
ILLEGAL = [(s, a) for a in ACTIONS for s in STATUS_ORDER if s not in ALLOWED_FROM[a]]


@pytest.mark.parametrize(("status", "action"), LEGAL)
@pytest.mark.parametrize("who", ["engineer", "admin"])
def test_every_legal_transition_by_each_manager(api, personas, report, status, action, who):
    emergency = report(status)
    response = api(personas[who]).post(f"/api/emergencies/{emergency.code}/{action}/")
    assert response.status_code == 200, response.content
    assert Emergency.objects.get(pk=emergency.pk).status == TARGET[action]


@pytest.mark.parametrize(("status", "action"), ILLEGAL)
def test_every_illegal_transition_is_a_409_that_changes_nothing(api, personas, report, status, action):
    emergency = report(status)
    before = Emergency.objects.filter(pk=emergency.pk).values().get()
    body = assert_envelope(api(personas["engineer"]).post(f"/api/emergencies/{emergency.code}/{action}/"), 409,
                           code="invalid_transition")
    assert emergency.code in body["error"]["message"] and status in body["error"]["message"]
    assert Emergency.objects.filter(pk=emergency.pk).values().get() == before


@pytest.mark.parametrize("action", ACTIONS + ["assign"])
def test_staff_cannot_handle_emergencies_even_their_own(api, personas, report, action):
    emergency = report()
    assert_envelope(api(personas["staff"]).post(f"/api/emergencies/{emergency.code}/{action}/",
                                                {"assigned_to": "ST001"}, format="json"), 403)
    emergency.refresh_from_db()
    assert emergency.status == "reported" and emergency.assigned_to is None


@pytest.mark.parametrize("action", ACTIONS + ["assign"])
def test_anonymous_gets_401_everywhere(anon_api, report, action):
    code = report().code
    assert_envelope(anon_api.post(f"/api/emergencies/{code}/{action}/"), 401, code="not_authenticated")
    assert_envelope(anon_api.get("/api/emergencies/"), 401)
    assert_envelope(anon_api.get(f"/api/emergencies/{code}/"), 401)
    assert_envelope(anon_api.post("/api/emergencies/", PAYLOAD, format="json"), 401)
    assert_envelope(anon_api.patch(f"/api/emergencies/{code}/", {"location": "x"}, format="json"), 401)


@pytest.mark.parametrize(
    ("who", "sees"),
    [("staff", {"EMG001", "EMG003"}), ("other_staff", {"EMG002"}), ("engineer", {"EMG001", "EMG002", "EMG003"}),
     ("admin", {"EMG001", "EMG002", "EMG003"})],
)
def test_list_visibility_by_role(api, personas, report, who, sees):
    report(by=personas["staff"])
    report(by=personas["other_staff"])
    third = report(by=personas["engineer"])
    services.assign_emergency(emergency=third, actor=personas["engineer"], assignee=personas["staff"])
    body = api(personas[who]).get("/api/emergencies/").json()
    assert {e["code"] for e in body["results"]} == sees
    codes = [e["code"] for e in body["results"]]
    assert codes == sorted(codes, reverse=True)  # newest first


def test_other_staff_cannot_see_or_edit_someone_elses_emergency(api, personas, report):
    code = report().code
    assert_envelope(api(personas["other_staff"]).get(f"/api/emergencies/{code}/"), 404, code="not_found")
    assert_envelope(api(personas["other_staff"]).patch(f"/api/emergencies/{code}/", {"location": "X"}, format="json"),
                    404)
    assert Emergency.objects.get(code=code).location == "Berth 4"


def test_assignee_sees_it_after_assignment(api, personas, report):
    code = report(by=personas["staff"]).code
    assert api(personas["other_staff"]).get(f"/api/emergencies/{code}/").status_code == 404
    response = api(personas["engineer"]).post(f"/api/emergencies/{code}/assign/",
                                              {"assigned_to": "ST002", "change_reason": "On duty"}, format="json")
    assert response.status_code == 200 and response.json()["assigned_to"] == "ST002"
    assert api(personas["other_staff"]).get(f"/api/emergencies/{code}/").status_code == 200


def test_assign_refuses_unknown_pending_and_closed(api, personas, report, make_user):
    make_user("ST099", approval_status="pending")
    client = api(personas["engineer"])
    code = report().code
    assert_envelope(client.post(f"/api/emergencies/{code}/assign/", {"assigned_to": "NOBODY"}, format="json"), 400,
                    fields=["assigned_to"])
    assert_envelope(client.post(f"/api/emergencies/{code}/assign/", {"assigned_to": "ST099"}, format="json"), 400,
                    fields=["assigned_to"])
    assert_envelope(client.post(f"/api/emergencies/{code}/assign/", {"assigned_to": 17}, format="json"), 400,
                    fields=["assigned_to"])
    assert_envelope(client.post(f"/api/emergencies/{code}/assign/", {}, format="json"), 400, fields=["assigned_to"])
    closed = report("closed").code
    assert_envelope(client.post(f"/api/emergencies/{closed}/assign/", {"assigned_to": "ST002"}, format="json"), 409)
    assert Emergency.objects.get(code=closed).assigned_to is None


def test_reporter_edits_while_reported_only(api, personas, report):
    emergency = report()
    client = api(personas["staff"])
    response = client.patch(f"/api/emergencies/{emergency.code}/", {"location": "Berth 5", "change_reason": "Moved"},
                            format="json")
    assert response.status_code == 200 and response.json()["location"] == "Berth 5"
    assert_envelope(client.patch(f"/api/emergencies/{emergency.code}/", {"assigned_to": "ST001"}, format="json"), 403)
    services.acknowledge_emergency(emergency=emergency, actor=personas["engineer"])
    assert_envelope(client.patch(f"/api/emergencies/{emergency.code}/", {"location": "Berth 6"}, format="json"), 409)
    assert Emergency.objects.get(pk=emergency.pk).location == "Berth 5"


def test_managers_edit_until_closed_and_escalation_is_critical(api, personas, report, events):
    emergency = report("dispatched")
    client = api(personas["engineer"])
    response = client.patch(f"/api/emergencies/{emergency.code}/", {"severity": "critical", "assigned_to": "PE001"},
                            format="json")
    assert response.status_code == 200
    assert (response.json()["severity"], response.json()["assigned_to"]) == ("critical", "PE001")
    assert [e["severity"] for e in events if e["event_type"] == "emergency_escalated"] == ["critical"]
    closed = report("closed")
    assert_envelope(client.patch(f"/api/emergencies/{closed.code}/", {"location": "X"}, format="json"), 409)


def test_status_and_code_are_not_writable(api, personas, report):
    emergency = report()
    client = api(personas["admin"])
    assert_envelope(client.patch(f"/api/emergencies/{emergency.code}/", {"status": "closed"}, format="json"), 400,
                    fields=["status"])
    assert_envelope(client.patch(f"/api/emergencies/{emergency.code}/", {"code": "EMG999"}, format="json"), 400,
                    fields=["code"])
    assert Emergency.objects.get(pk=emergency.pk).status == "reported"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({**PAYLOAD, "emergency_type": "alien"}, "emergency_type"),
        ({**PAYLOAD, "severity": "medium"}, "severity"),
        ({**PAYLOAD, "severity": 5}, "severity"),
        ({**PAYLOAD, "vessel": ""}, "vessel"),
        ({**PAYLOAD, "vessel": "V" * 121}, "vessel"),
        ({**PAYLOAD, "description": ["a", "b"]}, "description"),
        ({k: v for k, v in PAYLOAD.items() if k != "description"}, "description"),
        ({**PAYLOAD, "assigned_to": ["PE001"]}, "assigned_to"),
    ],
)
def test_bad_create_input_is_a_400_with_the_field(api, personas, payload, field):
    assert_envelope(api(personas["engineer"]).post("/api/emergencies/", payload, format="json"), 400, fields=[field])
    assert not Emergency.objects.exists()


def test_malformed_and_unsupported_bodies_and_methods(api, personas, report):
    code = report().code
    client = api(personas["engineer"])
    assert_envelope(client.post("/api/emergencies/", data="{oops", content_type="application/json"), 400)
    assert_envelope(client.post("/api/emergencies/", data="[]", content_type="application/json"), 400)
    assert_envelope(client.post("/api/emergencies/", data="fire!", content_type="text/plain"), 415,
                    code="unsupported_media_type")
    assert_envelope(client.post(f"/api/emergencies/{code}/acknowledge/", data="x", content_type="text/plain"), 415)
    assert_envelope(client.put(f"/api/emergencies/{code}/", PAYLOAD, format="json"), 405, code="method_not_allowed")
    assert_envelope(client.delete(f"/api/emergencies/{code}/"), 405)
    assert_envelope(client.get(f"/api/emergencies/{code}/acknowledge/"), 405)
    assert_envelope(client.get("/api/emergencies/EMG999/"), 404, code="not_found")
    assert_envelope(client.post("/api/emergencies/EMG999/dispatch/"), 404)
    assert Emergency.objects.get(code=code).status == "reported"


def test_list_filters(api, personas, report):
    report(severity="critical", emergency_type="flooding", vessel="MV Aurora")
    report("acknowledged", vessel="Tug Bravo")
    report("closed", emergency_type="medical", description="Crew injury")
    client = api(personas["engineer"])

    def codes(query):
        response = client.get(f"/api/emergencies/?{query}")
        assert response.status_code == 200, response.content
        return {e["code"] for e in response.json()["results"]}

    assert codes("status=acknowledged") == {"EMG002"}
    assert codes("status=acknowledged&status=closed") == {"EMG002", "EMG003"}
    assert codes("severity=critical") == {"EMG001"}
    assert codes("emergency_type=medical") == {"EMG003"}
    assert codes("vessel=aurora") == {"EMG001"}
    assert codes("active=true") == {"EMG001", "EMG002"}
    assert codes("active=false") == {"EMG003"}
    assert codes("search=injury") == {"EMG003"}
    assert codes("reported_by=st001") == {"EMG001", "EMG002", "EMG003"}
    for bad in ("status=burning", "severity=medium", "emergency_type=alien", "active=perhaps"):
        assert_envelope(client.get(f"/api/emergencies/?{bad}"), 400, fields=[bad.split("=")[0]])
    assert_envelope(client.get("/api/emergencies/?page=99"), 404)


@pytest.mark.parametrize("param, value, expected", [
    # an offset PostgreSQL does not take (it allows up to ±15:59): the same instant in UTC
    ("created_before", "2999-01-01T00:00:00+17:43", {"EMG001"}),
    ("created_after", "2999-01-01T00:00:00-23:59", set()),
    ("created_after", "2000-01-01T00:00:00+23:59", {"EMG001"}),
])
def test_created_filters_take_any_iso_offset(api, personas, report, param, value, expected):
    report()
    response = api(personas["engineer"]).get("/api/emergencies/", {param: value})
    assert response.status_code == 200, response.content
    assert {e["code"] for e in response.json()["results"]} == expected


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:00-01:00"])
def test_created_filters_refuse_an_instant_outside_the_years_1_to_9999_in_utc(api, personas, value):
    response = api(personas["engineer"]).get("/api/emergencies/", {"created_after": value})
    assert_envelope(response, 400, fields=["created_after"])


def test_codes_are_case_insensitive_in_urls(api, personas, report):
    code = report().code
    assert api(personas["engineer"]).get(f"/api/emergencies/{code.lower()}/").json()["code"] == code


# --- the role matrix ----------------------------------------------------------------------

WHO = ["anonymous", "staff", "other_staff", "engineer", "admin"]
# EMG001 is reported by ST001 (staff) and still "reported".
EMERGENCY_MATRIX = [
    ("get", "/api/emergencies/", None, (401, 200, 200, 200, 200)),
    ("post", "/api/emergencies/", PAYLOAD, (401, 201, 201, 201, 201)),
    ("get", "/api/emergencies/EMG001/", None, (401, 200, 404, 200, 200)),
    ("patch", "/api/emergencies/EMG001/", {"location": "Berth 9"}, (401, 200, 404, 200, 200)),
    ("post", "/api/emergencies/EMG001/acknowledge/", {}, (401, 403, 403, 200, 200)),
    ("post", "/api/emergencies/EMG001/assign/", {"assigned_to": "PE001"}, (401, 403, 403, 200, 200)),
    ("put", "/api/emergencies/EMG001/", PAYLOAD, (401, 405, 405, 405, 405)),
    ("delete", "/api/emergencies/EMG001/", None, (401, 405, 405, 405, 405)),
]


@pytest.mark.parametrize(("method", "path", "body", "expected"), EMERGENCY_MATRIX,
                         ids=[f"{m} {p}" for m, p, _, _ in EMERGENCY_MATRIX])
@pytest.mark.parametrize("who", WHO)
def test_emergency_endpoint_role_matrix(anon_api, api, personas, report, method, path, body, expected, who):
    report(by=personas["staff"])
    client = anon_api if who == "anonymous" else api(personas[who])
    if body is None:
        response = getattr(client, method)(path)
    else:
        response = getattr(client, method)(path, body, format="json")
    status = expected[WHO.index(who)]
    assert response.status_code == status, response.content
    if status >= 400:
        assert response.json()["success"] is False and response.json()["error"]["code"]

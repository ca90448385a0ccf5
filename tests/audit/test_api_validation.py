"""Strict validation of the real-time audit API's parameters: every bad one
is a 400 in the error envelope naming it; never a 500, never a silently
clamped value."""

from __future__ import annotations

import pytest

from audit.models import ActivityLog

EXPORT = "/api/realtime/export-audit"
PACK = "/api/realtime/export-pack"
TRAIL = "/api/realtime/audit-trail"
EVENTS = "/api/realtime/system-events"
ACTIVITY = "/api/realtime/user-activity/ST001"
HISTORY = "/api/realtime/entity-history/maintenance_request/MR001"

BAD_HOURS = ["-1", "0", "-0", "abc", "8761", "8760.0001", "1e309", "-1e309", "nan", "NaN", "inf", "-inf",
             "Infinity", "", "  ", "0x10", "1,5", "true", "24h"]
# "²" is a digit to str.isdigit() that int() refuses (it was a 500), "١٠" another script's ten
BAD_LIMITS = ["0", "-1", "1001", "100000", "1.5", "abc", "", "1e3", "nan", "99999999999999999999999", "²", "١٠"]

CASES = (
    [(url, "hours", value) for url in (TRAIL, EVENTS, ACTIVITY, EXPORT) for value in BAD_HOURS]
    + [(url, "limit", value) for url in (TRAIL, EVENTS, ACTIVITY, HISTORY) for value in BAD_LIMITS]
    + [(EVENTS, "severity", value) for value in ("unknown", "error,bogus", "", ",", "error,,critical", "fatal")]
    + [(url, "status", value) for url in (TRAIL, EXPORT) for value in ("bogus", "COMPLETED ", "done")]
    + [(url, "action_type", value) for url in (TRAIL, EXPORT) for value in ("hack", "UPDATE", "update;drop")]
    + [(url, "entity_type", value) for url in (TRAIL, EXPORT) for value in ("vessel", "MaintenanceRequest")]
    + [(url, "user_id", value) for url in (TRAIL, EXPORT) for value in ("X" * 21, "a\x00b")]
    + [(url, "entity_id", value) for url in (TRAIL, EXPORT, PACK) for value in ("M" * 65, "MR\x00001")]
    + [(EVENTS, name, value) for name in ("acknowledged", "processed") for value in ("maybe", "2", "")]
    + [(PACK, "hours", value) for value in ("-1", "abc", "8761", "nan")]
    + [(PACK, "status", "bogus"), (PACK, "action_type", "hack"), (PACK, "entity_type", "vessel"),
       (PACK, "user_id", "X" * 21)]
    + [(url, "exact_total", value) for url in (TRAIL, EVENTS, ACTIVITY, HISTORY) for value in ("2", "yes", "", "-1")]
    # instants in the years 0 and 10000 once in UTC (Python cannot hold them: an OverflowError was a 500)
    + [(url, name, value) for url in (EXPORT, PACK) for name in ("from", "to")
       for value in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:00-01:00")]
)


def ids(case):
    url, name, value = case
    return f"{url.split('/')[3]}-{name}={value[:12]!r}"


@pytest.mark.parametrize("case", CASES, ids=[ids(c) for c in CASES])
def test_bad_parameter_is_a_400_envelope_naming_it(api, personas, case):
    url, name, value = case
    response = api(personas["admin"]).get(url, {name: value})
    assert response.status_code == 400, response.content[:200]
    body = response.json()
    assert body["success"] is False
    assert body["error"]["code"] == "invalid"
    assert name in body["error"]["message"]
    assert list(body["error"]["fields"]) == [name]
    assert name in body["error"]["fields"][name]


# the operations above, by their path in the OpenAPI document
DOCUMENTED = {
    "/api/realtime/audit-trail/": TRAIL,
    "/api/realtime/system-events/": EVENTS,
    "/api/realtime/user-activity/{user_id}/": ACTIVITY,
    "/api/realtime/entity-history/{entity_type}/{entity_id}/": HISTORY,
    "/api/realtime/export-audit/": EXPORT,
    "/api/realtime/export-pack/": PACK,
}


def test_every_documented_query_parameter_of_these_reads_has_a_bad_value_case(client):
    """The table above covers the API as documented: a parameter added to one of these
    operations without a bad-value case here fails this test."""
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    documented = {(url, parameter["name"]) for path, url in DOCUMENTED.items()
                  for parameter in schema["paths"][path]["get"].get("parameters", [])
                  if parameter["in"] == "query"}
    covered = {(url, name) for url, name, _ in CASES}
    assert documented - covered == set()
    assert covered - documented == set()  # and no case for a parameter the document does not declare


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/realtime/entity-history/vessel/V1", "entity_type"),
        ("/api/realtime/entity-history/maintenance_request/" + "M" * 65, "entity_id"),
        ("/api/realtime/user-activity/" + "U" * 21, "user_id"),
        ("/api/realtime/entity-history/Maintenance_Request/MR001", "entity_type"),
        ("/api/realtime/user-activity/PE%00001", "user_id"),
        ("/api/realtime/entity-history/maintenance_request/MR%00001", "entity_id"),
    ],
)
def test_bad_path_parameter_is_a_400_for_a_manager(api, personas, url, field):
    response = api(personas["engineer"]).get(url)
    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == [field]


@pytest.mark.parametrize("url", ["/api/realtime/user-activity/ST%00002",
                                 "/api/realtime/entity-history/maintenance_request/MR%00001"])
def test_staff_asking_with_a_nul_byte_gets_403_not_500(api, personas, url):
    assert api(personas["staff"]).get(url).status_code == 403


def test_several_bad_parameters_are_all_named(api, personas):
    body = api(personas["admin"]).get(TRAIL, {"hours": "0", "limit": "0", "status": "x"}).json()
    assert set(body["error"]["fields"]) == {"hours", "limit", "status"}


@pytest.mark.parametrize(
    ("url", "query"),
    [
        (TRAIL, {"hours": "8760"}),
        (TRAIL, {"hours": "0.001"}),
        (TRAIL, {"limit": "1000"}),
        (TRAIL, {"limit": "1"}),
        (EVENTS, {"severity": "ERROR,critical"}),
        (EVENTS, {"severity": "info,warning,error,critical"}),
        (TRAIL, {"status": "pending", "action_type": "password_reset", "entity_type": "user"}),
        (ACTIVITY, {"hours": "1.5", "limit": "7"}),
        (HISTORY, {"limit": "1000"}),
        # offsets beyond PostgreSQL's ±15:59 (ISO 8601 allows ±23:59): the instant in UTC
        (EXPORT, {"from": "2000-01-01T00:00:00+17:43", "to": "2000-01-02T00:00:00-23:59"}),
        (PACK, {"from": "2000-01-01T00:00:00+17:43", "to": "2000-01-02T00:00:00-23:59"}),
    ],
)
def test_edge_values_are_accepted(api, personas, url, query):
    assert api(personas["admin"]).get(url, query).status_code == 200


def test_a_bad_read_is_neither_answered_nor_recorded(api, personas):
    before = ActivityLog.objects.filter(activity__startswith="Viewed").count()
    assert api(personas["admin"]).get(TRAIL, {"limit": "5000"}).status_code == 400
    assert ActivityLog.objects.filter(activity__startswith="Viewed").count() == before


@pytest.mark.parametrize("url", [TRAIL + "/", EVENTS + "/", ACTIVITY + "/", HISTORY + "/",
                                 "/api/realtime/dashboard/", EXPORT + "/"])
def test_trailing_slash_is_accepted(api, personas, url):
    assert api(personas["admin"]).get(url).status_code == 200


@pytest.mark.parametrize("url", [TRAIL, "/api/realtime/dashboard", EXPORT])
def test_writes_are_refused_with_405_envelope(api, personas, url):
    response = api(personas["admin"]).post(url, {})
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


# Issue 11.5: a '%' or a format string sent as a value broke the error message itself (a 500
# and an unhandled_error event): the value is quoted back verbatim in a 400 instead.
FORMAT_STRINGS = ["%", "%d", "%s", "50%", "%(x)s", "%%"]
FORMAT_CASES = (
    [(url, "hours", v) for url in (TRAIL, EVENTS, ACTIVITY, EXPORT) for v in FORMAT_STRINGS]
    + [(url, "limit", v) for url in (TRAIL, EVENTS, ACTIVITY, HISTORY) for v in FORMAT_STRINGS]
    + [(url, name, v) for url in (TRAIL, EXPORT) for name in ("action_type", "entity_type", "status")
       for v in FORMAT_STRINGS]
    + [(EVENTS, "severity", v) for v in FORMAT_STRINGS]
)


@pytest.mark.parametrize("case", FORMAT_CASES, ids=[ids(c) for c in FORMAT_CASES])
def test_format_string_in_a_parameter_is_a_400_quoting_it(api, personas, case):
    from audit.models import SystemEvent

    url, name, value = case
    response = api(personas["admin"]).get(url, {name: value})
    assert response.status_code == 400, response.content[:200]
    message = response.json()["error"]["fields"][name]
    assert repr(value) in message
    assert not SystemEvent.objects.filter(event_type="unhandled_error").exists()


def test_format_string_in_a_path_parameter_is_a_400_quoting_it(api, personas):
    response = api(personas["admin"]).get("/api/realtime/entity-history/%25d/MR001")
    assert response.status_code == 400
    assert "'%d' is not valid" in response.json()["error"]["fields"]["entity_type"]

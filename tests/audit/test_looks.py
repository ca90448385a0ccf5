"""Reads of audit data are logged once per look (SPEC): the dashboard's opening
is one activity row; its refreshes (the API poll, the chart data, the stream
reconnecting) carry the page's look token and add none. A read without a
genuine token of the same user's look is recorded as before."""

from __future__ import annotations

import html as htmllib
import re
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from audit import looks
from audit.models import ActivityLog

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def script_urls(page: str) -> dict[str, str]:
    tag = re.search(r'<script src="/static/audit/dashboard.js"[^>]*>', page).group(0)
    return {name: htmllib.unescape(value) for name, value in re.findall(r'data-(api|extra|stream)="([^"]*)"', tag)}


def with_short_stream(url: str) -> str:
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    query["timeout"] = "0.05"
    return f"{parts.path}?{urlencode(query)}"


def drain(response) -> None:
    assert response.status_code == 200, response.content[:300]
    b"".join(response.streaming_content)


def test_an_open_dashboard_polling_for_30_seconds_adds_no_activity_row(portal, personas):
    client = portal(personas["engineer"])
    page = client.get("/dashboard/")
    assert page.status_code == 200
    opened = list(ActivityLog.objects.filter(user_id="PE001", activity="Viewed audit dashboard"))
    assert len(opened) == 1  # the opening of the look is recorded
    urls = script_urls(page.content.decode())
    assert set(urls) == {"api", "extra", "stream"} and all("look=" in u for u in urls.values())
    before = ActivityLog.objects.count()

    # 30 s of an idle dashboard: a poll every 5 s (both JSON reads) and the stream reconnecting twice
    for second in range(0, 30, 5):
        assert client.get(urls["api"]).json()["success"] is True
        assert client.get(urls["extra"]).json()["success"] is True
        if second % 15 == 0:
            drain(client.get(with_short_stream(urls["stream"])))

    assert ActivityLog.objects.count() == before
    assert ActivityLog.objects.filter(user_id="PE001", activity="Viewed audit dashboard").count() == 1
    assert not ActivityLog.objects.filter(activity="Opened audit stream").exists()


def test_opening_the_dashboard_again_is_a_new_look(portal, personas):
    client = portal(personas["engineer"])
    first = script_urls(client.get("/dashboard/").content.decode())["api"]
    second = script_urls(client.get("/dashboard/").content.decode())["api"]
    assert first != second
    assert ActivityLog.objects.filter(user_id="PE001", activity="Viewed audit dashboard").count() == 2


@pytest.mark.parametrize("look", ["", "forged", "not:a:token", "x" * 400])
def test_a_read_without_a_genuine_look_is_recorded(api, personas, look):
    client = api(personas["engineer"])
    query = f"?look={look}" if look else ""
    assert client.get(f"/api/realtime/dashboard{query}").status_code == 200
    assert ActivityLog.objects.filter(user_id="PE001", activity="Viewed audit dashboard").count() == 1


def test_someone_elses_look_does_not_spare_a_read(api, portal, personas):
    urls = script_urls(portal(personas["admin"]).get("/dashboard/").content.decode())
    client = api(personas["engineer"])
    assert client.get(urls["api"]).status_code == 200
    drain(client.get(with_short_stream(urls["stream"])))
    assert ActivityLog.objects.filter(user_id="PE001", activity="Viewed audit dashboard").count() == 1
    assert ActivityLog.objects.filter(user_id="PE001", activity="Opened audit stream").count() == 1


def test_a_look_at_another_page_or_an_expired_one_is_recorded(api, personas, monkeypatch):
    client = api(personas["engineer"])
    other = looks.issue(user=personas["engineer"], page="audit-log")
    assert client.get(f"/api/realtime/dashboard?look={other}").status_code == 200
    mine = looks.issue(user=personas["engineer"], page="dashboard")
    monkeypatch.setattr(looks, "MAX_AGE", -1)
    assert client.get(f"/api/realtime/dashboard?look={mine}").status_code == 200
    assert ActivityLog.objects.filter(user_id="PE001", activity="Viewed audit dashboard").count() == 2


def test_a_stream_opened_without_a_look_is_recorded(api, personas):
    drain(api(personas["engineer"]).get("/api/realtime/stream?timeout=0.05"))
    assert ActivityLog.objects.filter(user_id="PE001", activity="Opened audit stream").count() == 1


@pytest.mark.parametrize(("surface", "url"), [
    ("api", "/api/realtime/audit-trail"),
    ("api", "/api/realtime/user-activity/ST002"),
    ("api", "/api/realtime/stream?timeout=0.05"),
    ("page", "/admin/audit-log/"),
    ("page", "/dashboard/"),
    ("page", "/users/ST002/activity/"),
])
def test_a_read_that_cannot_be_recorded_is_refused_alike_by_the_api_and_the_pages(
        api, portal, personas, monkeypatch, caplog, surface, url):
    from audit import services

    client = (api if surface == "api" else portal)(personas["engineer"])

    def broken(*args, **kwargs):
        raise RuntimeError("audit database down")

    monkeypatch.setattr(services, "log_activity", broken)
    with caplog.at_level("ERROR", logger="audit.looks"):
        response = client.get(url)
    assert response.status_code == 503
    if surface == "api":
        assert response.json()["error"] == {"code": "audit_unavailable", "message": looks.REFUSED}
    else:
        assert response["Content-Type"] == "text/plain; charset=utf-8"
        assert response.content.decode() == looks.REFUSED
    [record] = [r for r in caplog.records if r.name == "audit.looks"]
    assert record.getMessage().startswith("audit read not recorded: ")
    assert isinstance(record.exc_info[1], RuntimeError)


def test_record_read_writes_the_activity_with_its_details_as_sorted_json(rf, personas):
    request = rf.get("/")
    request.user = personas["engineer"]
    looks.record_read(request, "Viewed audit log", {"page": 2, "entity_type": "vessel"})
    row = ActivityLog.objects.latest("pk")
    assert (row.user_id, row.activity, row.details) == (
        personas["engineer"].user_id, "Viewed audit log", '{"entity_type": "vessel", "page": 2}')

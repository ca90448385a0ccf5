"""Every error response under /api/ is JSON in the error envelope, with DEBUG on
and off (issue 12.9); successful non-JSON answers keep their types."""

import json

import pytest
from django.test import Client, override_settings

ERRORS_URLS = "tests.core.api_error_urls"


def _envelope(response, status, code):
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    body = json.loads(response.content)
    assert body["success"] is False
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert "<html" not in response.content.decode().lower()
    return body


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
@pytest.mark.parametrize("path", ["/api/maintenance-requests/àò/", "/api/inventory/zMîeHY/adjustments/", "/api/no-such-thing"])
def test_unknown_api_route_is_a_json_404(api, admin_user, debug, path):
    with override_settings(DEBUG=debug):
        response = api(admin_user).get(path, HTTP_ACCEPT="text/html")
    body = _envelope(response, 404, "not_found")
    assert body["error"]["message"] == "Not found."
    assert response["X-Request-ID"]


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
@pytest.mark.urls(ERRORS_URLS)
def test_unhandled_error_under_api_is_a_json_500(debug):
    client = Client(raise_request_exception=False)
    with override_settings(DEBUG=debug):
        response = client.get("/api/test-boom/", HTTP_ACCEPT="text/html")
    body = _envelope(response, 500, "server_error")
    assert body["error"]["message"] == "Internal server error."
    assert "a bug in a view" not in response.content.decode()  # nothing of the exception leaks


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
@pytest.mark.urls(ERRORS_URLS)
def test_method_not_allowed_outside_drf_is_a_json_405_keeping_allow(debug):
    with override_settings(DEBUG=debug):
        response = Client().get("/api/test-post-only/")
    body = _envelope(response, 405, "method_not_allowed")
    assert body["error"]["message"] == "Method not allowed."
    assert response["Allow"] == "POST"


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
def test_drf_405_stays_in_the_envelope(api, admin_user, debug):
    with override_settings(DEBUG=debug):
        response = api(admin_user).delete("/api/schema/")
    _envelope(response, 405, "method_not_allowed")


@pytest.mark.django_db
def test_csrf_failure_under_api_is_a_json_403(admin_user):
    from tests.conftest import PASSWORD

    client = Client(enforce_csrf_checks=True)
    assert client.login(username=admin_user.user_id, password=PASSWORD)
    response = client.post("/api/maintenance-requests/", {"title": "x"})
    _envelope(response, 403, "permission_denied")


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
@pytest.mark.urls(ERRORS_URLS)
def test_portal_errors_stay_html(debug):
    client = Client(raise_request_exception=False)
    with override_settings(DEBUG=debug):
        missing = client.get("/no-such-page/")
        broken = client.get("/test-boom/")
    assert missing.status_code == 404 and missing["Content-Type"].startswith("text/html")
    assert broken.status_code == 500 and broken["Content-Type"].startswith("text/html")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/api/schema/", "application/vnd.oai.openapi"),
        ("/api/docs/", "text/html"),
        ("/api/redoc/", "text/html"),
        ("/api/realtime/export-audit", "text/csv"),
    ],
)
def test_successful_non_json_answers_keep_their_type(api, admin_user, path, content_type):
    response = api(admin_user).get(path)
    assert response.status_code == 200
    assert response["Content-Type"].startswith(content_type)

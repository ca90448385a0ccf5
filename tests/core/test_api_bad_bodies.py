"""Bodies no field could accept are a 400 (or 413) in the envelope, never a 500 (issue 11.5)."""

import json

import pytest

from audit.models import SystemEvent

DEEP = "[" * 5000  # about 5 KB, sent anonymously in the review


def _refused(response, status, words):
    assert response.status_code == status, response.content[:300]
    body = response.json()
    assert body["success"] is False
    assert words in body["error"]["message"]
    assert not SystemEvent.objects.filter(event_type="unhandled_error").exists()
    return body


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["/api/auth/token", "/api/auth/register", "/api/maintenance-requests/"])
def test_deeply_nested_json_is_a_400(anon_api, api, admin_user, url):
    client = api(admin_user) if url.startswith("/api/maintenance") else anon_api
    response = client.generic("POST", url, DEEP, content_type="application/json")
    _refused(response, 400, "nested deeper than 32 levels")


@pytest.mark.django_db
@pytest.mark.parametrize(("levels", "refused"), [(32, False), (33, True)])
def test_the_limit_is_32_levels(api, admin_user, levels, refused):
    # {"tags": [[...]]}: the object is one level, the arrays the rest.
    arrays = levels - 1
    body = '{"vessel": "MV Deep", "title": "x", "tags": ' + "[" * arrays + "]" * arrays + "}"
    response = api(admin_user).generic("POST", "/api/maintenance-requests/", body, content_type="application/json")
    assert response.status_code < 500
    assert ("nested deeper than 32 levels" in response.content.decode()) is refused


@pytest.mark.django_db
def test_brackets_inside_strings_do_not_count_as_nesting(api, admin_user):
    body = json.dumps({"vessel": "MV Brackets", "title": "[" * 100, "description": "{" * 100, "category": "engine",
                       "priority": "low", "change_reason": "test"})
    response = api(admin_user).generic("POST", "/api/maintenance-requests/", body, content_type="application/json")
    assert "nested deeper" not in response.content.decode()
    assert response.status_code < 500


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/maintenance-requests/", "category"),
        ("/api/maintenance-requests/", "priority"),
        ("/api/emergencies/", "emergency_type"),
        ("/api/emergencies/", "severity"),
        ("/api/auth/register", "role"),
    ],
)
def test_lone_surrogate_in_a_choice_field_is_a_400(api, anon_api, admin_user, url, field):
    client = anon_api if "auth" in url else api(admin_user)
    body = '{"' + field + '": "\\ud800", "vessel": "MV Surrogate", "title": "x"}'
    response = client.generic("POST", url, body, content_type="application/json")
    _refused(response, 400, "lone surrogate")


@pytest.mark.django_db
def test_lone_surrogate_in_a_key_is_a_400(api, admin_user):
    response = api(admin_user).generic("POST", "/api/maintenance-requests/", '{"\\udfff": 1}', content_type="application/json")
    _refused(response, 400, "lone surrogate")


@pytest.mark.django_db
def test_paired_surrogates_are_a_character(api, admin_user):
    body = '{"vessel": "MV \\ud83d\\udea2", "title": "ship", "description": "d", "category": "engine", "priority": "low"}'
    response = api(admin_user).generic("POST", "/api/maintenance-requests/", body, content_type="application/json")
    assert "lone surrogate" not in response.content.decode()
    assert response.status_code < 500


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
def test_oversized_json_body_is_a_413(api, admin_user, settings, debug):
    settings.DEBUG = debug
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = json.dumps({"vessel": "MV Big", "title": "t", "description": "a" * 20_000})
    response = api(admin_user).generic("POST", "/api/maintenance-requests/", body, content_type="application/json")
    body = _refused(response, 413, "too large: at most 10000 bytes")
    assert body["error"]["code"] == "too_large"


@pytest.mark.django_db
def test_oversized_form_body_is_a_413(anon_api, client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    form = "username=" + "a" * 20_000
    response = anon_api.generic("POST", "/api/auth/token", form, content_type="application/x-www-form-urlencoded")
    _refused(response, 413, "too large")
    page = client.generic("POST", "/login/", form, content_type="application/x-www-form-urlencoded")
    assert page.status_code == 413
    assert "larger than the 9.8\xa0KB this site accepts" in page.content.decode()
    assert "Too large" in page.content.decode()

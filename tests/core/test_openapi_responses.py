"""What the OpenAPI document says an operation answers, checked against real answers (the
property-based test, test_openapi_properties.py, found each of these undocumented)."""

import pytest
from drf_spectacular.generators import SchemaGenerator
from knox.models import AuthToken

from tests.core import openapi_document

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def document():
    return SchemaGenerator().get_schema(request=None, public=True)


def _token(user):
    return AuthToken.objects.create(user)[1]


def test_every_operation_that_takes_credentials_documents_401(document):
    missing = [
        f"{method.upper()} {path}"
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if operation.get("security") and {} not in operation["security"] and "401" not in operation["responses"]
    ]
    assert missing == []


@pytest.mark.parametrize("method, path, template", [
    ("GET", "/api/emergencies/EM0001/", "/api/emergencies/{code}/"),
    ("POST", "/api/users/ST001/approve/", "/api/users/{user_id}/approve/"),
    ("GET", "/api/users/me/", "/api/users/me/"),
])
def test_an_anonymous_request_answers_the_documented_401(method, path, template):
    response = openapi_document.send(method, path)
    assert response.status_code == 401
    assert response.json["error"]["code"] == "not_authenticated"
    openapi_document.validate(method, template, response)


@pytest.mark.parametrize("path", ["/api/inventory/", "/api/maintenance-requests/", "/api/emergencies/", "/api/users/"])
@pytest.mark.parametrize("page", ["999", "0", "-3"])
def test_a_page_out_of_range_answers_the_documented_404(admin_user, path, page):
    response = openapi_document.send("GET", path, token=_token(admin_user), query={"page": page})
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"
    openapi_document.validate("GET", path, response)


def test_a_bad_filter_on_the_user_list_answers_the_documented_400(admin_user):
    response = openapi_document.send("GET", "/api/users/", token=_token(admin_user), query={"is_active": "2"})
    assert response.status_code == 400
    assert "is_active" in response.json["error"]["fields"]
    openapi_document.validate("GET", "/api/users/", response)


def test_an_account_not_approved_by_anyone_shows_approved_by_null_as_documented(staff):
    response = openapi_document.send("GET", "/api/users/me/", token=_token(staff))
    assert response.status_code == 200
    assert response.json["approved_by"] is None
    openapi_document.validate("GET", "/api/users/me/", response)


def test_an_account_whose_email_was_cleared_answers_as_documented(staff):
    token = _token(staff)
    response = openapi_document.send("PATCH", "/api/users/me/", token=token, json={"email": ""})
    assert response.status_code == 200
    assert response.json["email"] == ""
    openapi_document.validate("PATCH", "/api/users/me/", response)
    listed = openapi_document.send("GET", "/api/users/me/", token=token)
    openapi_document.validate("GET", "/api/users/me/", listed)

"""The API's error envelope is one OpenAPI component, used by every app's error responses."""

import io

import pytest
from django.core.management import call_command
from drf_spectacular.generators import SchemaGenerator


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def test_one_error_envelope_component(schema):
    names = [name for name in schema["components"]["schemas"] if "Error" in name]
    assert sorted(names) == ["ErrorDetail", "ErrorEnvelope"]
    envelope = schema["components"]["schemas"]["ErrorEnvelope"]
    assert set(envelope["properties"]) == {"success", "error"}
    assert set(schema["components"]["schemas"]["ErrorDetail"]["properties"]) == {"code", "message", "fields"}


@pytest.mark.parametrize("path, method, status", [
    ("/api/maintenance-requests/{code}/approve/", "post", "400"),
    ("/api/emergencies/{code}/acknowledge/", "post", "400"),
    ("/api/auth/token/", "post", "400"),
    ("/api/realtime/audit-trail/", "get", "400"),
])
def test_each_app_answers_errors_with_the_shared_component(schema, path, method, status):
    paths = schema["paths"]
    content = paths[path][method]["responses"][status]["content"]["application/json"]["schema"]
    assert content == {"$ref": "#/components/schemas/ErrorEnvelope"}


def test_the_schema_validates_without_warnings(tmp_path):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out), stderr=io.StringIO())
    assert "ErrorEnvelope:" in out.read_text()

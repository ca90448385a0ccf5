"""The OpenAPI document as the application serves it, loaded by Schemathesis through the WSGI
application, and requests sent to that application inside the test's transaction."""

from __future__ import annotations

import contextlib
import functools

import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from werkzeug.test import Client

from marine_center.wsgi import application

SCHEMA_PATH = "/api/schema/"


@functools.cache
def load():
    """The document served at SCHEMA_PATH (GET as anonymous: no database access)."""
    return schemathesis.openapi.from_wsgi(SCHEMA_PATH, application)


@contextlib.contextmanager
def in_process_requests():
    """Requests through the WSGI handler inside the test's transaction: as Django's own test
    client does, request_started/finished must not close the connection in mid-test."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def send(method: str, path: str, *, token: str | None = None, json=None, query: dict | None = None):
    """One request to the WSGI application; a werkzeug TestResponse that Schemathesis validates."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with in_process_requests():
        return Client(application).open(path, method=method, headers=headers, json=json, query_string=query)


def validate(method: str, template: str, response) -> None:
    """Raise (Schemathesis' FailureGroup) unless ``response`` is what the document says
    ``method template`` answers: a listed status code, its media type and its body schema."""
    documented = load().raw_schema["paths"][template][method.lower()]["responses"]
    assert str(response.status_code) in documented, f"{response.status_code} is not documented: {sorted(documented)}"
    load()[template][method].validate_response(response)

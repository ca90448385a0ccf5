"""Property-based test of the whole API against its own OpenAPI document (issue 11.5).

Schemathesis loads the document the application serves (``GET /api/schema/``, through the WSGI
application: no server process) and, for every operation, generates requests from it: positive
ones (valid by the document) and negative ones (violating it), with hostile strings mixed into
the generated values (NUL, lone surrogates, ``%`` and format strings, JSON nested thousands of
levels deep). Each operation runs anonymously and as an admin, a port engineer and a staff user
whose Bearer tokens come from ``POST /api/auth/token``. Every response must be no 5xx, have a
status code the document lists, and a media type and body that match what it documents.

Deterministic (Hypothesis derandomized, no example database) and bounded: ``API_FUZZ_EXAMPLES``
examples per operation, role and generation mode. Each example runs in a savepoint rolled back
after it, so examples do not see each other's writes (a revoked token, a changed password, a
lock-out counter) and the test database is as the fixtures left it."""

from __future__ import annotations

import functools
import json
import os

import pytest
from django.db import transaction
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import PASSWORD
from tests.core import openapi_document

EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "10"))
ROLES = ("anonymous", "admin", "port_engineer", "staff")
STREAM_PATH = "/api/realtime/stream/"
# the stream is held open for this long at most (its default is half an hour)
STREAM_TIMEOUT = 0.05

schema = openapi_document.load()
schema.config.generation.update(modes=list(GenerationMode), max_examples=EXAMPLES, deterministic=True)
# explicit examples of the document, then generated requests; the coverage phase (every boundary
# and violation of every parameter, hundreds of requests per operation) runs with
# API_FUZZ_COVERAGE=1 only, as it alone takes minutes on a loaded two-core machine
PHASES = ["examples", "fuzzing"] + (["coverage"] if os.environ.get("API_FUZZ_COVERAGE") == "1" else [])
schema.config.phases.update(phases=PHASES)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

# --- hostile values --------------------------------------------------------------------------

HOSTILE_STRINGS = [
    "a\x00b",
    "\x00",
    "%",
    "50%",
    "%d",
    "%s%s%s%n",
    "%(secret)s",
    "{0.__class__}",
    "%25",
    "%00",
    # digits to str.isdigit() that int() refuses ("²") or reads in another script ("١٠"); "²" as a
    # system event's id was a 500
    "²",
    "١٠",
]

# Path parameters are mostly ids: these are the odd ids (digits int() refuses or reads in another
# script, out of range, signed, NUL, format strings)
HOSTILE_PATH_VALUES = ["²", "١٠", "0", "-1", "99999999999999999999", "1.5", "a\x00b", "%00", "%d", "%(secret)s"]

# Values only a JSON body can carry stand in the generated case as markers, and the test writes
# them into the JSON text it sends (_raw_json): a lone surrogate (JSON's "\\ud800" escape; it is
# not UTF-8, so neither a URL nor a form can hold it, and Schemathesis' validator of generated
# values refuses it) and a list nested thousands of levels deep (Schemathesis walks generated
# values recursively and would exhaust Python's stack).
MARK = "\x01"
SURROGATES = ("d800", "dfff")
DEPTHS = (1_000, 5_000)
JSON_ONLY = [f"{MARK}surrogate:{code}{MARK}" for code in SURROGATES] + [
    f"x{MARK}surrogate:dbff{MARK}y"
] + [f"{MARK}deep:{depth}{MARK}" for depth in DEPTHS]


def _with_hostile_values(value, draw, *, json_body: bool):
    """``value`` with some of its strings replaced by hostile ones (drawn by Hypothesis)."""
    if isinstance(value, str):
        if draw(st.integers(0, 3)) == 0:
            return draw(st.sampled_from(HOSTILE_STRINGS + (JSON_ONLY if json_body else [])))
        return value
    if isinstance(value, dict):
        return {k: _with_hostile_values(v, draw, json_body=json_body) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_hostile_values(v, draw, json_body=json_body) for v in value]
    return value


@schema.hook
def flatmap_case(context, case):
    """Hostile strings among the generated values of the body, the query and the path."""

    @st.composite
    def mutated(draw):
        is_json = bool(case.media_type) and "json" in case.media_type
        if isinstance(case.body, (dict, list)):
            case.body = _with_hostile_values(case.body, draw, json_body=is_json)
        if case.query:
            case.query = _with_hostile_values(case.query, draw, json_body=False)
        if case.path_parameters:
            # a path is text whatever the document's type: an id may arrive as "²" or a number too big
            case.path_parameters = {
                name: draw(st.sampled_from(HOSTILE_PATH_VALUES)) if draw(st.integers(0, 1)) == 0 else value
                for name, value in case.path_parameters.items()
            }
        return case

    return mutated()


def _raw_json(case) -> dict:
    """The JSON text to send instead of the generated body when it holds markers."""
    if not isinstance(case.body, (dict, list)):
        return {}
    text = json.dumps(case.body)
    escaped_mark = json.dumps(MARK)[1:-1]
    if escaped_mark not in text:
        return {}
    for code in SURROGATES + ("dbff",):
        text = text.replace(f"{escaped_mark}surrogate:{code}{escaped_mark}", f"\\u{code}")
    for depth in DEPTHS:
        text = text.replace(json.dumps(f"{MARK}deep:{depth}{MARK}"), "[" * depth + "]" * depth)
    return {"data": text.encode()}


@schema.hook
def map_query(context, query):
    """The stream ends after STREAM_TIMEOUT seconds unless the test sends an invalid timeout
    (which must be refused with a 400)."""
    if context.operation is None or context.operation.path != STREAM_PATH:
        return query
    query = dict(query or {})
    timeout = query.get("timeout")
    if isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and 0 < timeout:
        query["timeout"] = min(timeout, STREAM_TIMEOUT)
    elif timeout is None:
        query["timeout"] = STREAM_TIMEOUT
    return query


# --- the requests ----------------------------------------------------------------------------


@pytest.fixture
def role_headers(request, make_user, client):
    """Headers of the role under test: a Bearer token from POST /api/auth/token, or none."""
    role = request.param
    if role == "anonymous":
        return {}
    user_id = {"admin": "ADM901", "port_engineer": "PE901", "staff": "ST901"}[role]
    make_user(user_id, role=role)
    response = client.post("/api/auth/token", {"user_id": user_id, "password": PASSWORD},
                           content_type="application/json")
    assert response.status_code == 200, response.content
    return {"Authorization": f"Bearer {response.json()['token']}"}


@pytest.fixture
def in_process_requests():
    with openapi_document.in_process_requests():
        yield


@pytest.mark.django_db
@pytest.mark.parametrize("role_headers", ROLES, indirect=True)
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented(case, role_headers, in_process_requests):
    with transaction.atomic():
        try:
            case.call_and_validate(headers=role_headers, checks=CHECKS, **_raw_json(case))
        finally:
            transaction.set_rollback(True)



# --- the generator itself ----------------------------------------------------------------------


# Bodies the generator makes for POST /api/auth/token/ (anonymous: the attacker's first door),
# drawn once for the tests below: generation only, no shrinking (``find`` shrank each hit, which
# cost most of this part's time)
GENERATED_BODIES = 600


@functools.cache
def _generated_token_bodies() -> tuple[bytes, ...]:
    strategy = schema["/api/auth/token/"]["POST"].as_strategy(hooks=schema.hooks, media_type="application/json")
    bodies = []

    @given(strategy)
    @settings(database=None, derandomize=True, max_examples=GENERATED_BODIES, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck), deadline=None)
    def collect(case):
        bodies.append(_raw_json(case).get("data", json.dumps(case.body).encode()))

    collect()
    return tuple(bodies)


@pytest.mark.parametrize("wanted", [
    pytest.param(b"\\u0000", id="NUL"),
    pytest.param(b'"\\ud800"', id="lone surrogate"),
    pytest.param(b'"%d"', id="format string"),
    pytest.param(b"[" * 5_000 + b"]" * 5_000, id="deep nesting"),
])
def test_the_generated_bodies_carry_each_hostile_value(wanted):
    """The bodies sent to POST /api/auth/token/ include each kind of hostile value the issue names."""
    bodies = _generated_token_bodies()
    assert len(bodies) >= GENERATED_BODIES // 2
    assert any(wanted in body for body in bodies)


def test_the_stream_is_asked_for_a_short_timeout():
    strategy = schema[STREAM_PATH]["GET"].as_strategy(hooks=schema.hooks)
    found = find(strategy, lambda case: True, settings=settings(database=None, derandomize=True))
    assert 0 < found.query["timeout"] <= STREAM_TIMEOUT

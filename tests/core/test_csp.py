"""The Content-Security-Policy (issue 11.8): every HTML page carries the site's strict policy
(django-csp), none allows 'unsafe-inline' or 'unsafe-eval', the API documentation pages add only
their documented allowances, and no template keeps an inline script, style or event handler.
The browser side (no violation on any page) is tests/browser/test_csp.py."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

STRICT = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "font-src": ["'self'"],
    "connect-src": ["'self'"],
    "frame-ancestors": ["'none'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
}


def policy(response) -> dict:
    header = response["Content-Security-Policy"]
    assert "unsafe-inline" not in header and "unsafe-eval" not in header, header
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


@pytest.fixture
def records(admin_user, staff):
    from emergencies import services as emergencies
    from maintenance import services as maintenance

    request = maintenance.create_request(actor=staff, vessel="MV Aurora", title="Hull inspection",
                                         description="Inspect the hull plating.")
    emergency = emergencies.report_emergency(actor=staff, vessel="MV Aurora", emergency_type="collision",
                                             description="Hit the pier")
    item = maintenance.create_item(actor=admin_user, part_number="PN-1", name="Fuel filter", quantity_on_hand=5)
    return {"request": request.code, "pk": request.pk, "emergency": emergency.code, "item": item.code}


@pytest.mark.django_db
def test_every_html_page_an_admin_opens_carries_the_strict_policy(portal, admin_user, staff, records):
    client = portal(admin_user)
    paths = [
        "/", "/requests/", f"/requests/{records['request']}/", "/requests/new/",
        "/emergencies/", f"/emergencies/{records['emergency']}/", "/inventory/", f"/inventory/{records['item']}/",
        "/users/", f"/users/{staff.user_id}/", "/profile/", "/profile/password/", "/my-activity/",
        "/admin/audit-log", "/dashboard/", "/admin/", "/admin/audit/audittrail/",
        f"/admin/accounts/user/{staff.pk}/change/", f"/admin/maintenance/maintenancerequest/{records['pk']}/change/",
        "/no-such-page/",  # the 404 page
    ]
    for path in paths:
        response = client.get(path)
        assert response.status_code in (200, 404), (path, response.status_code)
        assert response["Content-Type"].startswith("text/html"), path
        assert policy(response) == STRICT, path


@pytest.mark.django_db
def test_a_browser_asking_the_api_for_html_gets_json_under_the_policy(portal, admin_user):
    # DRF's browsable API (inline styles in its templates) is not served; Swagger UI is the docs.
    client = portal(admin_user)
    response = client.get("/api/maintenance-requests/", HTTP_ACCEPT="text/html,application/xhtml+xml,*/*;q=0.8")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert policy(response) == STRICT
    assert client.get("/api/maintenance-requests/?format=api").status_code == 404


@pytest.mark.django_db
def test_anonymous_pages_carry_the_strict_policy(client):
    for path in ["/login/", "/register/", "/admin/login/"]:
        response = client.get(path)
        assert response.status_code == 200, path
        assert policy(response) == STRICT, path


@pytest.mark.django_db
def test_swagger_ui_needs_nothing_beyond_the_strict_policy(portal, admin_user):
    client = portal(admin_user)
    page = client.get("/api/docs/")
    assert page.status_code == 200 and policy(page) == STRICT
    html = page.content.decode()
    # its start-up script is a second request to the same view, not an inline block
    assert re.search(r'<script src="/api/docs/\?script="></script>', html), html
    assert not re.search(r"<script>|<style", html)
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle(" in script.content


@pytest.mark.django_db
def test_redoc_gets_a_nonce_and_two_hashes_for_its_styles_and_blob_workers(portal, admin_user):
    from marine_center.api_docs import REDOC_EMPTY_STYLE, REDOC_SCROLLBAR_CSS

    client = portal(admin_user)
    page = client.get("/api/redoc/")
    assert page.status_code == 200
    directives = policy(page)
    style = directives.pop("style-src")
    assert directives.pop("worker-src") == ["blob:"]
    assert directives == {k: v for k, v in STRICT.items() if k != "style-src"}
    nonce = re.search(r'nonce="([^"]+)"', page.content.decode()).group(1)
    assert style == ["'self'", f"'nonce-{nonce}'", REDOC_SCROLLBAR_CSS, REDOC_EMPTY_STYLE]
    # no font or stylesheet from another site, no inline script or style
    html = page.content.decode()
    assert "googleapis" not in html and not re.search(r"<script>|<style", html)
    # a new nonce per response
    again = client.get("/api/redoc/")
    assert re.search(r'nonce="([^"]+)"', again.content.decode()).group(1) != nonce


INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "inline <script>"),
    (re.compile(r"<style\b", re.I), "<style> element"),
    (re.compile(r"<[a-z][^>]*\sstyle=", re.I), "style attribute"),
    (re.compile(r"<[a-z][^>]*\son[a-z]+=", re.I), "event handler attribute"),
    (re.compile(r"javascript:", re.I), "javascript: URL"),
]


def test_no_template_keeps_inline_script_style_or_handlers():
    found = []
    # the project's own templates (not those of an installed package in a .venv, .venv-3.13, ...)
    templates = [p for p in ROOT.glob("**/templates/**/*.html")
                 if not any(part.startswith(".") or part == "site-packages" for part in p.relative_to(ROOT).parts)]
    assert len(templates) > 30
    for template in templates:
        text = template.read_text()
        for pattern, what in INLINE:
            for match in pattern.finditer(text):
                found.append(f"{template.relative_to(ROOT)}: {what}: {match.group(0)[:80]}")
    assert found == []

"""The admin's audit pages for people (issue 13.4): every time to the second
in UTC, the IP and the old and new values in the changelists, the raw JSON
columns not repeated beside "Before / after", links to the audit log and the
dashboard from the index, breadcrumb links underlined and a real label on the
search box."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders

from audit.models import AuditTrail, SystemEvent, UpdateHistory

pytestmark = pytest.mark.django_db

UTC_SECONDS = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC")
IP = "203.0.113.7"


@pytest.fixture(autouse=True)
def _fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def edited_request(personas):
    from audit.context import audit_context
    from maintenance import services

    obj = services.create_request(actor=personas["staff"], vessel="MV A", title="Pump", reason="new")
    with audit_context(ip_address=IP):
        services.update_request(request_obj=obj, actor=personas["engineer"], title="Pump <b>seal</b>",
                                priority="high", reason="budget")
    SystemEvent.objects.create(event_type="heartbeat", severity="info")
    return obj


def _update_row(obj) -> AuditTrail:
    return AuditTrail.objects.get(entity_id=obj.code, action_type="update")


@pytest.mark.parametrize("url", ["/admin/audit/audittrail/", "/admin/audit/activitylog/",
                                 "/admin/audit/systemevent/", "/admin/audit/updatehistory/"])
def test_audit_changelists_show_times_to_the_second_in_utc(portal, admin_user, edited_request, url):
    html = portal(admin_user).get(url).content.decode()
    assert UTC_SECONDS.search(html), "no time as 2026-12-02 05:44:13 UTC"
    # the portal's form: the exact value on hover
    assert re.search(r'<time datetime="[^"]+" title="\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6} UTC">', html)
    assert "a.m." not in html and "p.m." not in html


def test_change_page_times_are_to_the_second_and_the_json_is_not_repeated(portal, admin_user, edited_request):
    row = _update_row(edited_request)
    html = portal(admin_user).get(f"/admin/audit/audittrail/{row.pk}/change/").content.decode()
    stamp = row.timestamp.strftime("%Y-%m-%d %H:%M:%S UTC")
    assert stamp in html
    assert "Before / after" in html and 'class="audit-diff"' in html
    # old_value / new_value / changes repeat the before/after table: not shown as raw JSON
    assert "field-old_value" not in html and "field-new_value" not in html and "field-changes" not in html
    assert f">{IP}<" in html


def test_trail_changelist_shows_the_change_and_the_ip(portal, admin_user, edited_request):
    html = portal(admin_user).get("/admin/audit/audittrail/?action_type__exact=update").content.decode()
    assert '<span title="maintenance_request">MR001</span>' in html  # the code, its type on hover
    assert "field-entity_type" not in html and "field-entity_id" not in html and "field-status" not in html
    # in words, as the portal says it: field labels and choice labels, not columns and stored codes
    assert "Title: Pump → Pump &lt;b&gt;seal&lt;/b&gt;; Priority: Medium → High" in html  # escaped
    assert "priority: medium" not in html
    assert f'<td class="field-ip_address">{IP}</td>' in html
    # the actor as people read it, the stored code on hover
    assert '<td class="field-who"><span title="PE001">PE001 · PE001 Person</span></td>' in html
    created = portal(admin_user).get("/admin/audit/audittrail/?action_type__exact=create&q=MR001").content.decode()
    assert re.search(r"Created with \d+ fields", created)


def test_field_history_changelist_shows_before_after_and_ip(portal, admin_user, edited_request):
    html = portal(admin_user).get("/admin/audit/updatehistory/?q=MR001").content.decode()
    row = UpdateHistory.objects.get(record_id="MR001", field_name="title", audit__action_type="update")
    assert '<td class="field-field"><span title="title">Title</span></td>' in html  # the label, the column on hover
    assert 'title="Pump">Pump</span>' in html
    assert "Pump &lt;b&gt;seal&lt;/b&gt;" in html and "<b>seal</b>" not in html
    assert f'<td class="field-trail_ip">{IP}</td>' in html
    assert f'href="/admin/audit/audittrail/{row.audit_id}/change/"' in html
    assert "field-table_name" not in html  # the record's code names it


def test_long_values_are_cut_with_the_whole_value_on_hover(portal, admin_user, personas):
    from maintenance import services

    long = "x" * 200
    obj = services.create_request(actor=personas["staff"], vessel="MV A", title="Pump")
    services.update_request(request_obj=obj, actor=personas["engineer"], description=long)
    html = portal(admin_user).get("/admin/audit/updatehistory/?q=MR001").content.decode()
    assert f'title="{long}"' in html and ("x" * 59 + "…") in html


def test_admin_index_links_the_audit_log_and_the_dashboard(portal, admin_user):
    html = portal(admin_user).get("/admin/").content.decode()
    assert '<a href="/admin/audit-log">Audit log</a>' in html
    assert '<a href="/dashboard/">Live dashboard</a>' in html


def test_search_box_has_a_real_label(portal, admin_user):
    html = portal(admin_user).get("/admin/audit/audittrail/").content.decode()
    label = re.search(r'<label for="searchbar">(.*?)</label>', html, re.S).group(1)
    assert "Search audit trails" in label and 'alt=""' in label


def test_every_admin_page_loads_the_stylesheet_that_underlines_breadcrumbs(portal, admin_user):
    html = portal(admin_user).get("/admin/audit/audittrail/").content.decode()
    assert 'href="/static/audit/admin-site.css"' in html
    assert "<style" not in html.split("</head>")[0].split("admin-site.css")[1]  # no inline style added
    css = open(finders.find("audit/admin-site.css")).read()
    assert re.search(r"\.breadcrumbs a[^{]*\{[^}]*text-decoration: underline", css)


def test_other_admin_times_are_to_the_second_in_utc(portal, admin_user, personas):
    from maintenance import services

    obj = services.create_request(actor=personas["staff"], vessel="MV A", title="Pump")
    html = portal(admin_user).get(f"/admin/maintenance/maintenancerequest/{obj.pk}/change/").content.decode()
    assert obj.created_at.strftime("%Y-%m-%d %H:%M:%S UTC") in html


def test_a_failed_change_says_so_in_the_change_column(portal, admin_user):
    AuditTrail.objects.create(user_id="PE001", action_type="update", entity_type="maintenance_request",
                              entity_id="MR404", status="failed", error_message="Request is closed.")
    html = portal(admin_user).get("/admin/audit/audittrail/?status__exact=failed").content.decode()
    assert '<strong class="audit-status audit-status-failed">Failed</strong> Request is closed.' in html


def test_a_hand_entry_says_so_in_the_change_column(portal, admin_user):
    from audit.context import audit_context
    from audit.services import log_entity_change

    with audit_context(actor=admin_user):
        log_entity_change("maintenance_request", "MR900", "priority", "low", "high", change_reason="phoned in")
    html = portal(admin_user).get("/admin/audit/audittrail/?source__exact=manual").content.decode()
    assert '<strong class="audit-source">manual entry:</strong> Priority: Low → High' in html


def test_every_page_names_its_icon_so_browsers_do_not_ask_for_a_missing_favicon(client, portal, admin_user):
    """Without a declared icon every browser asks for /favicon.ico, a 404 in the server's log on
    each first visit."""
    link = '<link rel="icon" href="/static/img/favicon.svg" type="image/svg+xml">'
    assert link in client.get("/login/").content.decode()  # the portal's layout
    assert link in client.get("/admin/login/").content.decode()  # the admin's
    assert link in portal(admin_user).get("/admin/audit/audittrail/").content.decode()
    svg = open(finders.find("img/favicon.svg")).read()
    assert svg.startswith("<svg") and "<title>Marine Service Center</title>" in svg


def test_the_filters_name_record_types_and_people_as_people_read_them(portal, admin_user, personas):
    """The sidebar's choices are labels ("Maintenance requests", "PE001 · Priya Eriksen"), not
    table names or bare codes; the stored value is still what the link filters on."""
    html = portal(admin_user).get("/admin/audit/updatehistory/").content.decode()
    assert 'href="?table_name=maintenance_maintenancerequest">Maintenance requests</a>' in html
    assert ">maintenance_maintenancerequest<" not in html
    engineer = personas["engineer"]
    assert f'href="?user_id={engineer.user_id}">{engineer.user_id} · {engineer.full_name}</a>' in html
    assert ">system (no person: jobs and commands)<" in html
    html = portal(admin_user).get("/admin/audit/audittrail/").content.decode()
    assert 'href="?entity_type=maintenance_request">Maintenance requests</a>' in html


@pytest.mark.parametrize("model", ["audittrail", "updatehistory", "activitylog", "systemevent"])
def test_an_audit_table_offers_no_counts_per_filter_choice(portal, admin_user, model):
    """Django's "Show counts" counts every filter choice over the whole table: minutes at full
    scale. The audit tables neither offer it nor compute it when asked in the address."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = portal(admin_user)
    assert "_facets" not in client.get(f"/admin/audit/{model}/").content.decode()
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(f"/admin/audit/{model}/?_facets=True").status_code == 200
    assert not [q["sql"] for q in ctx.captured_queries if "FILTER (WHERE" in q["sql"]]

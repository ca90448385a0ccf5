"""The audit admins' bounded queries at scale (issue 15.4): a one-term
search's capped count is the sum of its branches made disjoint, each from its
own index, and a date-hierarchy probe is an ordered ``LIMIT 1`` on the time
index. The plans are checked with ``EXPLAIN`` on PostgreSQL over 60,000
generated rows in time order (ANALYZEd, as autovacuum keeps a live table)."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.admin import base as audit_admin
from audit.models import AuditTrail

pytestmark = pytest.mark.django_db

ROWS = 60_000


@pytest.fixture(autouse=True)
def _fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _fill(n: int, start: dt.datetime = dt.datetime(2024, 7, 1, tzinfo=dt.UTC)) -> None:
    """n trail rows over 364 days from ``start`` (ids follow time): ST001 acts on every 20th,
    ST001's own account is changed on every 250th (every other one of them by ST001).

    On PostgreSQL the rows are made by the database in one ``INSERT ... SELECT`` over
    ``generate_series`` (the same rows as the loop below, the other columns copied from the first,
    which the ORM writes with its defaults), then ANALYZEd."""
    step = dt.timedelta(days=364) / n

    def row(i):
        return AuditTrail(timestamp=start + i * step, user_id="ST001" if i % 20 == 0 else f"ST{100 + i % 300}",
                          action_type="update", entity_type="user" if i % 250 == 0 else "maintenance_request",
                          entity_id="ST001" if i % 250 == 0 else f"MR{i}", status="completed")

    if connection.vendor != "postgresql":
        AuditTrail.objects.bulk_create([row(i) for i in range(1, n + 1)], batch_size=5_000)
        return
    first = AuditTrail.objects.bulk_create([row(1)])[0]
    made = {"timestamp", "user_id", "entity_type", "entity_id"}
    copied = [f.column for f in AuditTrail._meta.concrete_fields if not f.primary_key and f.column not in made]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO audit_trail (timestamp, user_id, entity_type, entity_id, {', '.join(copied)}) "
            "SELECT %s + i * %s, "
            "CASE WHEN i %% 20 = 0 THEN 'ST001' ELSE 'ST' || (100 + i %% 300) END, "
            "CASE WHEN i %% 250 = 0 THEN 'user' ELSE 'maintenance_request' END, "
            "CASE WHEN i %% 250 = 0 THEN 'ST001' ELSE 'MR' || i END, "
            f"{', '.join('t.' + c for c in copied)} "
            "FROM audit_trail t, generate_series(2, %s) AS i WHERE t.id = %s ORDER BY i",
            [start, step, n, first.pk],
        )
        cursor.execute("ANALYZE audit_trail")


def _plan(sql: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan

    def walk(node):
        yield f"{node['Node Type']} {node.get('Relation Name', '')} {node.get('Index Name', '')}".strip()
        for child in node.get("Plans", []):
            yield from walk(child)

    return list(walk(plan[0]["Plan"]))


def test_a_search_term_count_is_the_capped_number_of_matches(monkeypatch, portal, admin_user):
    _fill(2_000)  # ST001 acts on 100 rows, its account is changed in 8 (4 of them by ST001): 104 matches
    client = portal(admin_user)
    monkeypatch.setattr(audit_admin, "COUNT_CAP", 101)
    assert "101 audit trails" in client.get("/admin/audit/audittrail/?q=ST001").content.decode()
    monkeypatch.setattr(audit_admin, "COUNT_CAP", 10_000)
    assert "104 audit trails" in client.get("/admin/audit/audittrail/?q=ST001").content.decode()
    assert "1 audit trail" in client.get("/admin/audit/audittrail/?q=MR1").content.decode()
    # two terms: both must match (AND), counted the plain way
    first = AuditTrail.objects.filter(entity_id="ST001").order_by("id").first()
    assert "1 audit trail" in client.get(f"/admin/audit/audittrail/?q=ST001+{first.pk}").content.decode()


@pytest.mark.postgres
def test_a_user_search_is_counted_from_the_indexes_not_a_sequential_scan(portal, admin_user):
    _fill(ROWS)
    client = portal(admin_user)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get("/admin/audit/audittrail/?q=ST001")
    assert response.status_code == 200 and "3120 audit trails" in response.content.decode()  # 3,000 + 120
    counts = [q["sql"] for q in ctx.captured_queries if "COUNT(" in q["sql"].upper() and "audit_trail" in q["sql"]]
    # one count per branch: the user's rows (an index-only scan once VACUUM has set the visibility map,
    # as at full scale; a bitmap of that index here), then its account's changes not made by the user
    assert len(counts) == 2, counts
    user, account = _plan(counts[0]), _plan(counts[1])
    assert not [n for n in user + account if n.startswith("Seq Scan")], (user, account)
    assert any("trail_user_ts_idx" in n for n in user) and not any("entity" in n for n in user), user
    assert any("trail_entity_ts_idx" in n for n in account), account


@pytest.mark.postgres
def test_a_year_probe_uses_the_time_index_where_most_rows_match(portal, admin_user):
    # 2025 holds 95 % of the rows: PostgreSQL's estimate for an unordered EXISTS is then a sequential
    # scan that stops at once, but in time order it reads all of December 2024 first
    _fill(ROWS, start=dt.datetime(2024, 12, 13, tzinfo=dt.UTC))
    client = portal(admin_user)
    with CaptureQueriesContext(connection) as ctx:
        html = client.get("/admin/audit/audittrail/").content.decode()
    assert "timestamp__year=2025" in re.search(r'class="toplinks".*?</nav>', html, re.S).group(0)
    probes = [q["sql"] for q in ctx.captured_queries if q["sql"].upper().rstrip().endswith("LIMIT 1")
              and "audit_trail" in q["sql"] and "\"timestamp\" >= '2025-01-01" in q["sql"]]
    assert len(probes) == 1, probes
    nodes = _plan(probes[0])
    assert not [n for n in nodes if n.startswith("Seq Scan")] and any("trail_ts_idx" in n for n in nodes), nodes


@pytest.mark.postgres
def test_date_hierarchy_probes_use_the_time_index(portal, admin_user):
    _fill(ROWS)
    client = portal(admin_user)
    with CaptureQueriesContext(connection) as ctx:
        html = client.get("/admin/audit/audittrail/?timestamp__year=2025").content.decode()
    assert "June 2025" in html and "July 2025" not in re.search(r'class="toplinks".*?</nav>', html, re.S).group(0)
    probes = [q["sql"] for q in ctx.captured_queries if q["sql"].upper().rstrip().endswith("LIMIT 1")
              and "audit_trail" in q["sql"]]
    assert len(probes) >= 6, probes  # January to June 2025
    for sql in probes:
        nodes = _plan(sql)
        assert not [n for n in nodes if n.startswith("Seq Scan")], (sql, nodes)
        assert any("trail_ts_idx" in n for n in nodes), (sql, nodes)


def _fill_history(n: int, start: dt.datetime = dt.datetime(2024, 7, 1, tzinfo=dt.UTC)) -> None:
    """n update_history rows over 364 days (ids follow time): every 40th is a field of the request
    MR7 and every 300th a field of the account MR7 (a user code that reads like a request's; the 600th
    rows are the account's), the others of 5,000 other requests."""
    from audit.models import UpdateHistory

    step = dt.timedelta(days=364) / n
    tables = ("maintenance_maintenancerequest", "accounts_user")

    def row(i):
        return UpdateHistory(timestamp=start + i * step, table_name=tables[1] if i % 300 == 0 else tables[0],
                             record_id="MR7" if i % 40 == 0 or i % 300 == 0 else f"MR{1000 + i % 5000}",
                             field_name="status", old_value="pending", new_value="approved", user_id="ST001")

    if connection.vendor != "postgresql":
        UpdateHistory.objects.bulk_create([row(i) for i in range(1, n + 1)], batch_size=5_000)
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO update_history (timestamp, table_name, record_id, field_name, old_value, new_value, "
            "user_id, change_reason) "
            "SELECT %s + i * %s, CASE WHEN i %% 300 = 0 THEN %s ELSE %s END, "
            "CASE WHEN i %% 40 = 0 OR i %% 300 = 0 THEN 'MR7' ELSE 'MR' || (1000 + i %% 5000) END, "
            "'status', 'pending', 'approved', 'ST001', '' FROM generate_series(1, %s) AS i ORDER BY i",
            [start, step, tables[1], tables[0], n],
        )
        cursor.execute("ANALYZE update_history")


def _listed(client, url) -> list[int]:
    response = client.get(url)
    assert response.status_code == 200, url
    return [row.pk for row in response.context["cl"].result_list]


def test_a_search_page_lists_the_rows_of_the_plain_search_in_order(portal, admin_user):
    """Each page of a one-term search, read branch by branch (each branch's first rows of the
    page, then the page among them), holds exactly the rows of the plain ``OR`` search's page."""
    from django.db.models import Q

    from audit.models import UpdateHistory

    _fill(2_000)  # ST001: 104 rows over two pages of 100 (its own account changed in 8, 4 of them by ST001)
    _fill_history(1_200)  # MR7: 28 rows of the request, 4 of the account
    client = portal(admin_user)
    trail = list(AuditTrail.objects.filter(Q(user_id="ST001") | Q(entity_id="ST001"))
                 .order_by("-timestamp", "-id").values_list("pk", flat=True))
    assert len(trail) == 104
    assert _listed(client, "/admin/audit/audittrail/?q=ST001") == trail[:100]
    assert _listed(client, "/admin/audit/audittrail/?q=ST001&p=2") == trail[100:]
    # oldest first (the time column the other way), then by id as the changelist makes it total
    oldest = list(AuditTrail.objects.filter(Q(user_id="ST001") | Q(entity_id="ST001"))
                  .order_by("timestamp", "-pk").values_list("pk", flat=True))
    assert _listed(client, "/admin/audit/audittrail/?q=ST001&o=1") == oldest[:100]
    # a sort by another column is neither offered nor done (a sort of every row at full scale)
    assert _listed(client, "/admin/audit/audittrail/?q=ST001&o=4") == trail[:100]
    history = list(UpdateHistory.objects.filter(record_id="MR7").order_by("-timestamp", "-id")
                   .values_list("pk", flat=True))
    assert len(history) == 32
    assert _listed(client, "/admin/audit/updatehistory/?q=MR7") == history
    # a row id and a code at once: the row with that id and the code's rows
    other = UpdateHistory.objects.exclude(record_id="MR7").order_by("id").first()
    assert _listed(client, f"/admin/audit/updatehistory/?q={other.pk}") == [other.pk]
    # a term of digits that are not ASCII digits is no row id (it was a server error)
    assert _listed(client, "/admin/audit/updatehistory/?q=%C2%B2") == []
    assert _listed(client, "/admin/audit/audittrail/?q=%C2%B2") == []


def _page_queries(ctx, table: str) -> tuple[str, str]:
    """The page's two reads: the branches' UNION (the page's ids), then the rows of those ids."""
    ours = [q["sql"] for q in ctx.captured_queries if f'FROM "{table}"' in q["sql"] and "COUNT(" not in q["sql"].upper()
            and "django_session" not in q["sql"]]
    union = [sql for sql in ours if " UNION " in sql]
    rows = [sql for sql in ours if f'"{table}"."id" IN (' in sql]
    assert len(union) == 1 and len(rows) == 1, ours
    return union[0], rows[0]


@pytest.mark.postgres
def test_a_search_page_reads_each_branch_from_its_index(portal, admin_user):
    """The page of a search by entity or record code: one ordered index scan per entity type (or
    table) for the page's ids, not a walk of the time index filtering every newer row, then the
    page's rows by their ids."""
    _fill(ROWS)
    _fill_history(ROWS)
    client = portal(admin_user)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get("/admin/audit/audittrail/?q=ST001&p=2")
    assert response.status_code == 200 and len(response.context["cl"].result_list) == 100
    union, rows = _page_queries(ctx, "audit_trail")
    nodes = _plan(union)
    # the user's branch may walk the time index here (ST001 acts on every 20th row): it stops after 200
    assert not [n for n in nodes if n.startswith("Seq Scan")], nodes
    assert sum(n.endswith("trail_entity_ts_idx") for n in nodes) == 9, nodes  # one per tracked entity type
    assert [n for n in _plan(rows) if "audit_trail" in n] == ["Index Scan audit_trail audit_trail_pkey"]
    with CaptureQueriesContext(connection) as ctx:
        response = client.get("/admin/audit/updatehistory/?q=MR7")
    assert response.status_code == 200 and len(response.context["cl"].result_list) == 100
    union, rows = _page_queries(ctx, "update_history")
    nodes = _plan(union)
    assert not [n for n in nodes if n.startswith("Seq Scan") or n.endswith("history_ts_idx")], nodes
    assert sum(n.endswith("history_record_ts_idx") for n in nodes) == 9, nodes
    assert [n for n in _plan(rows) if "update_history" in n] == ["Index Scan update_history update_history_pkey"]

"""The audit-log page's cost by depth: page 1, the page 100,000 rows deep by keyset
(``before=`` cursor) and the same depth by offset (``page=2001``), on PostgreSQL.

    BENCH_AUDIT_LOG_DB=bench_readable .venv/bin/python bench/audit_log_pages.py

Builds the scratch database (dropped first; ``BENCH_AUDIT_LOG_DB`` names it, default
``bench_audit_log``) with ``BENCH_ROWS`` audit_trail rows (default 200,000) spread over the last
30 days, then times each page through the Django test client as a port engineer (every middleware,
the recorded read), median and p95 of ``BENCH_N`` requests (default 20). Prints one JSON object.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.capture import postgresql_database, setup_django  # noqa: E402

ROWS = int(os.environ.get("BENCH_ROWS", 200_000))
N = int(os.environ.get("BENCH_N", 20))


def timed(client, url: str) -> dict:
    for _ in range(2):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
    times = []
    for _ in range(N):
        t0 = time.perf_counter()
        client.get(url)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {"url": url, "median_ms": round(statistics.median(times), 1),
            "p95_ms": round(times[max(0, int(len(times) * 0.95) - 1)], 1)}


def main() -> None:
    with postgresql_database("BENCH_AUDIT_LOG_DB", "bench_audit_log") as url:
        if url is not None:  # else PostgreSQL is unreachable, said on stderr
            setup_django(url)  # and the migrations
            measure()


def measure() -> None:
    from django.db import connection
    from django.test import Client

    from accounts.models import User
    from audit import selectors
    from audit.models import AuditTrail

    engineer = User.objects.create_user(user_id="PE001", password="x" * 12, role="port_engineer",
                                        full_name="Priya Eriksen")
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO audit_trail (timestamp, user_id, user_display, action_type, entity_type, entity_id,"
            " old_value, new_value, changes, ip_address, status, error_message, change_reason, request_id, source,"
            " displays)"
            " SELECT now() - (i * interval '30 days' / %s), 'ST' || lpad((i %% 50)::text, 3, '0'), '', 'update',"
            " 'maintenance_request', 'MR' || lpad((i %% 5000)::text, 4, '0'), '{\"priority\": \"low\"}',"
            " '{\"priority\": \"high\"}', '{\"priority\": {\"old\": \"low\", \"new\": \"high\"}}'::jsonb,"
            " '10.0.0.7', 'completed', '', '', '', 'captured', '{}' FROM generate_series(1, %s) AS i", [ROWS, ROWS])
        cursor.execute("ANALYZE audit_trail")
    client = Client()
    client.force_login(engineer)
    deep = selectors.trail_filtered(hours=720)[99_999]  # the last row of page 2000
    cursor_value = selectors.encode_cursor(deep)
    result = {
        "rows": AuditTrail.objects.count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "page 1 (30 d)": timed(client, "/admin/audit-log?hours=720"),
        "100,000 rows deep by keyset (before=)": timed(client, f"/admin/audit-log?hours=720&before={cursor_value}"),
        "100,000 rows deep by offset (page=2001)": timed(client, "/admin/audit-log?hours=720&page=2001"),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

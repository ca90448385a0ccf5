"""The peer benchmark (bench.peers): its verdicts and table from given
figures, and a tiny run on PostgreSQL so the bench code cannot rot."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.peers.run import OPS, OURS_OFF, TX_MODES, VARIANTS, table, verdicts

ROOT = Path(__file__).resolve().parents[2]


def _result(ours_ratio: float, peer_ratio: float) -> dict:
    result = {}
    for tx in TX_MODES:
        result[tx] = {}
        for op in OPS:
            row = {name: {"us": 1000.0, "ratio": 1.0, "samples": 5, "added_us_per_row": 0.0}
                   for name in (*VARIANTS, OURS_OFF)}
            row["ours"] = {"us": 1000.0 * ours_ratio, "ratio": ours_ratio, "samples": 5,
                           "added_us_per_row": 40.0}
            row["ours_to_pghistory_context"] = peer_ratio
            row["ours_capture_on_off"] = ours_ratio
            result[tx][op] = row
    return result


def test_verdicts_compare_each_target_with_its_bound_and_with_pghistory_with_context():
    result = _result(ours_ratio=1.45, peer_ratio=1.3)
    found = verdicts(result)
    assert set(found) == {f"{tx}.{op}" for tx in TX_MODES for op in ("edit", "create", "delete", "queryset_update")}
    assert found["autocommit.edit"]["met"] is True  # 1.45 <= 1.5
    assert found["autocommit.delete"]["met"] is False  # 1.45 > 1.4 (on ÷ off)
    assert found["atomic.queryset_update"] == {
        "value": 40.0, "bound": 50.0, "unit": "µs/row", "met": True,
        "to_pghistory_context": 1.3, "peer_bound": 1.25, "peer_met": False,
    }


def test_table_names_every_peer_and_says_which_target_is_not_met():
    result = _result(ours_ratio=1.7, peer_ratio=1.1)
    result["targets"] = verdicts(result)
    result["meta"] = {"bulk_rows": 1000, "server": "PostgreSQL 15.0", "load_average_1m": [1.0, 1.2], "cpus": 2}
    text = table(result)
    for label in ("untracked", "ours", "pghistory", "pghistory+context", "simple-history", "auditlog"):
        assert label in text
    assert "QuerySet.update() of 1,000 rows" in text
    assert "autocommit.edit" in text and "(<= 1.5): NOT MET by 0.20x" in text  # 1.7 against 1.5
    assert "ours / pghistory+context 1.10x (<= 1.25): met" in text
    assert "where a gap comes from, measured: docs/benchmarks.md" in text
    assert "load average [1.0, 1.2] on 2 CPUs" in text


def test_a_queryset_update_target_missed_says_by_how_many_microseconds_a_row():
    result = _result(ours_ratio=1.2, peer_ratio=1.1)
    for tx in TX_MODES:
        result[tx]["queryset_update"]["ours"]["added_us_per_row"] = 72.3
    result["targets"] = verdicts(result)
    result["meta"] = {"bulk_rows": 1000, "server": "PostgreSQL 15.0", "load_average_1m": [1.0, 1.2], "cpus": 2}
    assert "(<= 50.0): NOT MET by 22.3 µs/row" in table(result)


@pytest.mark.postgres
def test_the_peer_bench_runs_on_postgresql_and_every_peer_writes_its_rows(tmp_path):
    from django.conf import settings

    db = settings.DATABASES["default"]
    admin = f"postgresql://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/postgres"
    out = tmp_path / "peers.json"
    env = {**os.environ, "BENCH_PEERS_N": "5", "BENCH_PEERS_ROUNDS": "1", "BENCH_BULK": "10", "DJANGO_SETTINGS_MODULE": "marine_center.settings_test",
           "BENCH_PG_ADMIN_URL": admin, "BENCH_PG_DB": f"{db['NAME']}_peers"[:60]}
    proc = subprocess.run([sys.executable, "-m", "bench.peers", "--output", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(out.read_text())
    for tx in TX_MODES:
        assert set(data[tx]) == set(OPS)
        for op, row in data[tx].items():
            assert {*VARIANTS} <= set(row), op
            assert row["plain"]["ratio"] == 1.0
    assert data["autocommit"]["delete"][OURS_OFF]["us"] > 0
    assert all(count > 0 for count in data["meta"]["rows_written_in_warm_up"].values())
    assert "django-pghistory" in data["meta"]["peers"]

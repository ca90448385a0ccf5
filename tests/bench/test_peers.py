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


def test_each_figure_is_split_into_database_time_and_python_and_the_floor_says_what_no_python_would_give():
    """The floor of an operation: our time inside the database calls plus the baseline's Python
    (untracked; for delete, ours with capture off), in the unit of the operation's target."""
    from bench.peers.run import summarize

    samples = {op: {name: [(1000.0, 600.0)] * 3 for name in (*VARIANTS, OURS_OFF)} for op in OPS}
    for op in OPS:
        samples[op]["ours"] = [(2000.0, 1100.0), (2100.0, 1200.0), (1900.0, 1000.0)]  # median 2000 = 1100 + 900
    samples["delete"][OURS_OFF] = [(1500.0, 700.0)] * 3  # 700 + 800
    samples["queryset_update"]["plain"] = [(30000.0, 28000.0)] * 3
    samples["queryset_update"]["ours"] = [(90000.0, 80000.0)] * 3
    result = {tx: summarize(samples, bulk=1000) for tx in TX_MODES}
    edit = result["atomic"]["edit"]
    assert (edit["ours"]["us"], edit["ours"]["db_us"], edit["ours"]["python_us"]) == (2000.0, 1100.0, 900.0)
    assert edit["floor"] == 1.5  # (1100 + untracked's 400 of Python) / 1000
    assert result["atomic"]["delete"]["floor"] == 1.27  # (1100 + capture off's 800) / 1500
    assert result["atomic"]["delete"]["ours_capture_on_off"] == 1.33
    assert result["atomic"]["queryset_update"]["floor"] == 52.0  # (80000 - 28000) µs / 1000 rows
    result["targets"] = verdicts(result)
    result["meta"] = {"bulk_rows": 1000, "server": "PostgreSQL 15.0", "load_average_1m": [1.0, 1.2], "cpus": 2}
    text = table(result)
    assert "with no capture Python beyond Django's own: 52.0 µs/row (still over its bound)" in text
    assert "with no capture Python beyond Django's own: 1.27 on/off (within its bound)" in text
    assert "atomic.delete                untracked 600 + 400;  ours 1,100 + 900;  ours, capture off 700 + 800" in text

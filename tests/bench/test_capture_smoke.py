"""The capture benchmark still runs (tiny sizes), so bench code cannot rot."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_bench_capture_runs_on_sqlite_and_writes_the_documented_shape(tmp_path):
    out = tmp_path / "capture.json"
    env = {**os.environ, "BENCH_N": "5", "BENCH_ROUNDS": "1", "BENCH_BULK": "10", "BENCH_API_N": "2",
           "DJANGO_SETTINGS_MODULE": "marine_center.settings_test"}
    env.pop("DATABASE_URL", None)
    proc = subprocess.run([sys.executable, "-m", "bench.capture", "--db", "sqlite", "--output", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(out.read_text())
    for mode in ("autocommit", "atomic"):
        assert set(data[mode]) == {"create", "update", "update_fields", "delete", "queryset_update"}
        for row in data[mode].values():
            assert row["on_us"] > 0 and row["off_us"] > 0
            # the ratio is rounded to two decimals (and its times to a tenth): 1 %, or half a unit of the last decimal
            assert row["ratio"] == pytest.approx(row["on_us"] / row["off_us"], rel=0.01, abs=0.005)
    assert "ratio" in data["api_patch"] or "skipped" in data["api_patch"]
    assert data["meta"]["n"] == 5 and data["meta"]["bulk_rows"] == 10
    # "on" wrote audit rows, "off" wrote none
    assert data["meta"]["audit_rows_written_on"] > 0
    assert data["meta"]["audit_rows_written_off"] == 0


def test_bench_table_marks_the_targets():
    from bench.__main__ import table

    row = {"on_us": 300.0, "off_us": 100.0, "ratio": 3.0}
    ok = {"on_us": 110.0, "off_us": 100.0, "ratio": 1.1}
    data = {mode: {op: row for op in ("create", "update", "update_fields", "delete", "queryset_update")}
            for mode in ("autocommit", "atomic")}
    data["api_patch"] = ok
    data["meta"] = {"bulk_rows": 1000}
    text = table({"postgresql": data, "sqlite": {"skipped": "PostgreSQL unreachable"}})
    assert "update via save()" in text and "QuerySet.update() of 1,000 rows" in text
    assert text.count("target <= 2.0x: NOT MET") == 2
    assert "target <= 1.2x: met" in text
    assert "PostgreSQL unreachable" in text

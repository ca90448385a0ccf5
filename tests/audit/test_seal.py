"""seal_audit: chained seals over the rows written since the last seal, anchored in a signed file."""

import hashlib
import hmac
import json

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from audit import conf, merkle
from audit.models import ActivityLog, AuditSeal, SealKind
from audit.operations import integrity, signing

from .integrity_helpers import make_rows

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def seal_file(tmp_path, settings):
    settings.AUDIT_SEAL_FILE = str(tmp_path / "seal.json")
    settings.AUDIT_SEAL_KEY = "k" * 40
    return tmp_path / "seal.json"


def test_a_seal_covers_each_new_row_once_per_table(seal_file):
    trails = make_rows(3)
    first = integrity.seal()
    assert first.seq == 1 and first.prev_hash == integrity.ZERO_HASH
    ranges = first.ranges
    trail_ids = [t.pk for t in trails]
    assert ranges["audit_trail"] == integrity.to_ranges(trail_ids)
    assert first.row_count == 12  # 3 activities, 3 events, 3 trail rows, 3 history rows
    # one RFC 6962 leaf per row; the digest is the Merkle tree head over them
    assert len(first.row_hashes) == 12 * 32 and first.details["tree"] == "rfc6962"
    leaves = [bytes(first.row_hashes[i:i + 32]) for i in range(0, 12 * 32, 32)]
    assert first.rows_digest == merkle.tree_head(leaves).hex() != hashlib.sha256(bytes(first.row_hashes)).hexdigest()

    make_rows(1, entity_prefix="EMG")
    second = integrity.seal()
    assert second.prev_hash == first.hash
    assert second.row_count == 4
    firsts = {t: {i for lo, hi in r for i in range(lo, hi + 1)} for t, r in first.ranges.items()}
    seconds = {t: {i for lo, hi in r for i in range(lo, hi + 1)} for t, r in second.ranges.items()}
    assert all(not (firsts[t] & seconds.get(t, set())) for t in firsts)


def test_a_seal_is_written_even_when_nothing_is_new(seal_file):
    make_rows(1)
    first = integrity.seal()
    empty = integrity.seal()
    assert (empty.seq, empty.row_count, empty.ranges) == (first.seq + 1, 0, {})
    assert empty.prev_hash == first.hash
    assert json.loads(seal_file.read_text())["seq"] == empty.seq


def test_the_seal_file_holds_the_newest_seal_signed_with_the_key(seal_file):
    make_rows(1)
    link = integrity.seal()
    document = json.loads(seal_file.read_text())
    assert (document["seq"], document["hash"], document["kind"]) == (link.seq, link.hash, "seal")
    payload = {k: document[k] for k in ("seq", "hash", "kind", "created_at")}
    expected = hmac.new(b"k" * 40, integrity.canonical_json(payload).encode(), hashlib.sha256).hexdigest()
    assert document["hmac"] == expected


def test_the_row_hash_ignores_representation_but_not_values():
    row = (1, "PE001", "x", "", None, None, "", "", "", "", None)
    assert integrity.row_hash("activity_logs", row) == integrity.row_hash("activity_logs", row)
    assert integrity.row_hash("activity_logs", row) != integrity.row_hash("activity_logs", (2, *row[1:]))
    # a jsonb round trip (key order, text vs parsed) is not a change
    # (a system_events row: the seed's columns, request_id, then the event state, which no form hashes)
    a = integrity.canonical_row("system_events", (1, None, "t", "", "", "", "info", False, "", None, None, None, None))
    assert '"info"' in a
    assert integrity._json_value('{"b": 1, "a": 2}') == {"a": 2, "b": 1}
    assert integrity.utc_text(__import__("datetime").datetime(2025, 1, 2, 3, 4, 5)) == "2025-01-02T03:04:05.000000Z"


def test_no_canonical_form_hashes_the_event_state():
    """processed and the acknowledgement may change after a seal: no version from 2 on hashes them, and
    the columns added with them (processed_at, the acknowledgement) are in no version at all."""
    from audit.models import EVENT_STATE_COLUMNS

    for version, tables in integrity.CANONICAL_FORMS.items():
        hashed = set(tables["system_events"])
        assert not hashed & (set(EVENT_STATE_COLUMNS) - {"processed"}), version
        if version >= 2:
            assert "processed" not in hashed


def test_seal_audit_command_prints_the_seal_and_refuses_a_bad_loop(seal_file, capsys):
    make_rows(1)
    call_command("seal_audit")
    assert "seal #1: 4 rows" in capsys.readouterr().out
    with pytest.raises(CommandError, match="--loop"):
        call_command("seal_audit", "--loop", "abc")
    with pytest.raises(CommandError, match="--loop"):
        call_command("seal_audit", "--loop", "0")
    assert AuditSeal.objects.count() == 1


def test_without_a_key_outside_debug_sealing_is_refused_and_a_check_fails(settings):
    from audit.checks import check_integrity_settings

    settings.AUDIT_SEAL_KEY = ""
    settings.AUDIT_SIGNING_KEY = signing.generate_private_pem().decode()  # only the HMAC key is missing here
    settings.DEBUG = False
    settings.AUDIT_DEVELOPMENT_KEYS = False
    assert conf.seal_key() == b""
    assert [e.id for e in check_integrity_settings()] == ["audit.E003"]
    with pytest.raises(CommandError, match="AUDIT_SEAL_KEY"):
        call_command("seal_audit")


def _other_connection():
    s = connection.settings_dict
    conn = psycopg.connect(host=s["HOST"], port=s["PORT"] or 5432, user=s["USER"], dbname=s["NAME"],
                           password=s["PASSWORD"] or None)
    return conn


@pytest.mark.postgres
def test_postgres_seals_by_transaction_horizon_so_a_late_commit_with_a_lower_id_is_not_skipped():
    late = _other_connection()
    try:
        with late.cursor() as cur:  # an open transaction takes an id first...
            cur.execute("INSERT INTO activity_logs (user_id, activity, details, timestamp, request_id, user_agent, "
                        "method, path) VALUES ('ST001', 'late', '', now(), '', '', '', '') RETURNING id")
            late_id = cur.fetchone()[0]
        make_rows(1)  # ...and a later one commits first, with higher ids
        early_ids = list(ActivityLog.objects.exclude(pk=late_id).values_list("pk", flat=True))
        assert all(i > late_id for i in early_ids)
        first = integrity.seal()
        sealed = {i for lo, hi in first.ranges["activity_logs"] for i in range(lo, hi + 1)}
        assert sealed == set(early_ids)  # the open transaction's row waits; the others need not
        report = integrity.verify()
        assert report.ok  # the open transaction's row is not visible yet, so not missing either
        late.commit()
        second = integrity.seal()
        assert second.ranges["activity_logs"] == [[late_id, late_id]]  # no row skipped, none sealed twice
        assert integrity.verify().ok
        assert integrity.seal().row_count == 0
        assert integrity.verify().ok
    finally:
        late.close()


@pytest.mark.postgres
def test_postgres_sealing_waits_for_no_lock_that_writers_take():
    """An open writer transaction does not block the seal, and the seal does not block writers."""
    writer = _other_connection()
    try:
        with writer.cursor() as cur:
            cur.execute("SET lock_timeout = '2s'")
            cur.execute("INSERT INTO activity_logs (user_id, activity, details, timestamp, request_id, user_agent, "
                        "method, path) VALUES ('ST001', 'open', '', now(), '', '', '', '')")
        link = integrity.seal()  # returns although a writer is mid-transaction
        assert link.kind == SealKind.SEAL
        with writer.cursor() as cur:
            cur.execute("INSERT INTO system_events (timestamp, event_type, entity_type, entity_id, event_data, "
                        "severity, processed, request_id) VALUES (now(), 'x', '', '', '', 'info', false, '')")
        writer.commit()
    finally:
        writer.close()

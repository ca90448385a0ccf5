import datetime
from decimal import Decimal
from uuid import UUID

import pytest

from audit.capture.diff import MASK, Diff, FieldChange, classify, diff_values, to_json

UTC = datetime.UTC


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None), ("", ""), (0, 0), (True, True), (Decimal("12.50"), "12.50"),
        (datetime.date(2025, 1, 20), "2025-01-20"),
        (datetime.datetime(2025, 1, 20, 14, 30, 45, 123000, tzinfo=UTC), "2025-01-20T14:30:45.123000Z"),
        (datetime.datetime(2025, 1, 20, 16, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=2))),
         "2025-01-20T14:00:00Z"),
        (UUID("12345678123456781234567812345678"), "12345678-1234-5678-1234-567812345678"),
        ({"b", "a"}, ["a", "b"]), (b"\x00\x01", "[binary 2 bytes]"),
    ],
)
def test_to_json(value, expected):
    assert to_json(value) == expected


def test_update_records_only_changed_fields_and_keeps_null_apart_from_empty():
    diff = diff_values({"a": 1, "b": None, "c": "x", "d": "same"}, {"a": 2, "b": "", "c": "x", "d": "same"})
    assert diff == Diff("update", (FieldChange("a", 1, 2), FieldChange("b", None, "")))
    assert diff.as_dict() == {"a": {"old": 1, "new": 2}, "b": {"old": None, "new": ""}}


def test_nothing_changed_is_an_empty_falsy_diff():
    assert not diff_values({"a": Decimal("1.0")}, {"a": Decimal("1.00")})


def test_create_and_delete_record_every_field():
    assert diff_values(None, {"a": 1}).as_dict() == {"a": {"old": None, "new": 1}}
    assert diff_values({"a": 1}, None).as_dict() == {"a": {"old": 1, "new": None}}
    assert diff_values(None, {"a": 1}).old_values() is None


def test_masked_excluded_and_ignored_fields():
    old = {"password": "pbkdf2$old", "secret_note": "s1", "last_login": 1, "updated_at": 1, "name": "a"}
    new = {"password": "pbkdf2$new", "secret_note": "s2", "last_login": 2, "updated_at": 2, "name": "a"}
    diff = diff_values(old, new, masked={"secret_note"}, excluded={"last_login"}, ignored={"updated_at"})
    assert diff.as_dict() == {"password": {"old": MASK, "new": MASK}, "secret_note": {"old": MASK, "new": MASK}}
    created = diff_values(None, {"password": "pbkdf2$x", "last_login": 1}, excluded={"last_login"})
    assert created.as_dict() == {"password": {"old": None, "new": MASK}}


def test_normalize_avoids_false_changes_from_unsaved_strings():
    assert not diff_values({"n": 5}, {"n": "5"}, normalize={"n": int})
    assert diff_values({"n": 5}, {"n": "6"}, normalize={"n": int}).as_dict() == {"n": {"old": 5, "new": 6}}


def test_diff_is_frozen():
    with pytest.raises(AttributeError):
        diff_values({"a": 1}, {"a": 2}).mode = "x"


@pytest.mark.parametrize(
    ("changes", "action"),
    [
        ({"status": ("pending", "approved"), "approved_by": (None, "PE001"), "approved_at": (None, "t")}, "approve"),
        ({"status": ("pending", "rejected"), "rejection_reason": ("", "No budget")}, "reject"),
        ({"approval_status": ("pending", "approved")}, "approve"),
        ({"status": ("approved", "in_progress"), "started_at": (None, "t")}, "status_change"),
        ({"assigned_to": (None, "PE001")}, "assign"),
        ({"status": ("pending", "approved"), "title": ("a", "b")}, "update"),
        ({"password": (MASK, MASK)}, "password_reset"),
        ({"role": ("staff", "admin")}, "role_change"),
        ({"title": ("a", "b")}, "update"),
    ],
)
def test_classify(changes, action):
    diff = Diff("update", tuple(FieldChange(k, o, n) for k, (o, n) in changes.items()))
    assert classify(diff) == action

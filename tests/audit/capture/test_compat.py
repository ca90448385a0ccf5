"""The private Django, simple-history and psycopg APIs the capture relies on
(audit.capture.compat) are as it expects: an upgrade that changes one fails
here and in the system check, not silently in production."""

import pytest
from django.core.checks import run_checks
from django.db import connection, transaction
from django.db.models import Model

from audit.capture import compat


def test_every_private_api_the_capture_relies_on_is_as_expected():
    assert compat.problems() == []


def test_a_changed_private_method_signature_is_reported_by_name(monkeypatch):
    def _do_update(self, base_qs, using, pk_val, values, update_fields, forced_update, returning_fields):
        raise AssertionError("never called")

    monkeypatch.setattr(Model, "_do_update", _do_update)
    [problem] = compat.problems()
    assert problem.startswith("django.db.models.Model._do_update(")
    assert "returning_fields" in problem


def test_a_changed_django_delete_the_capture_repeats_is_reported(monkeypatch):
    from django.db.models.deletion import Collector

    def delete(self):
        raise AssertionError("never called")

    monkeypatch.setattr(Collector, "delete", delete)
    [problem] = compat.problems()
    assert problem.startswith("django Collector.delete changed")


def test_the_system_check_fails_loudly_when_an_api_changed(monkeypatch):
    monkeypatch.setattr(compat, "problems", lambda: ["Signal._live_receivers is gone"])
    errors = [m for m in run_checks() if m.id == "audit.E010"]
    assert len(errors) == 1
    assert "Signal._live_receivers is gone" in errors[0].msg


def test_a_changed_revert_view_of_simple_history_is_reported(monkeypatch):
    from simple_history.admin import SimpleHistoryAdmin

    def history_form_view(self, request, object_id, version_id, extra_context=None, *, partial=False):
        raise AssertionError("never called")

    monkeypatch.setattr(SimpleHistoryAdmin, "history_form_view", history_form_view)
    [problem] = compat.problems()
    assert problem.startswith("SimpleHistoryAdmin.history_form_view is no longer")


def test_the_model_mixin_overrides_django_private_methods_only_through_the_fence():
    from audit.capture.querysets import AuditedModelMixin

    owners = {name: next(c for c in AuditedModelMixin.__mro__ if name in vars(c))
              for name in ("_do_insert", "_do_update", "refresh_from_db")}
    assert set(owners.values()) == {compat.ModelHooks}


@pytest.mark.django_db
def test_a_test_cases_own_transaction_is_recognised():
    assert connection.in_atomic_block
    assert compat.in_test_case_transaction(connection) is True


@pytest.mark.django_db(transaction=True)
def test_a_transaction_the_application_opened_is_not_a_test_cases():
    with transaction.atomic():
        assert connection.in_atomic_block
        assert compat.in_test_case_transaction(connection) is False


def test_a_test_case_that_no_longer_marks_its_transaction_is_reported(monkeypatch):
    from django.test import TestCase

    @classmethod
    def _enter_atomics(cls):
        return {}

    monkeypatch.setattr(TestCase, "_enter_atomics", _enter_atomics)
    [problem] = compat.problems()
    assert problem == "django.test.TestCase._enter_atomics no longer marks its blocks _from_testcase"


def test_an_atomic_block_without_the_test_case_mark_is_reported(monkeypatch):
    from django.db.transaction import Atomic

    original = Atomic.__init__

    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        del self._from_testcase

    monkeypatch.setattr(Atomic, "__init__", __init__)
    assert "django.db.transaction.Atomic no longer sets _from_testcase = False" in compat.problems()


def test_no_module_but_the_fence_names_the_private_attributes_it_relies_on():
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    private = ("_from_testcase", "_live_receivers", "_default_get_user", "_send_query_prepared")
    fence = root / "audit" / "capture" / "compat.py"
    outside = sorted(
        f"{path.relative_to(root)}: {name}"
        for app in ("audit", "core", "maintenance", "emergencies", "accounts", "forwarding", "alerts", "marine_center")
        for path in (root / app).rglob("*.py") if path != fence
        for name in private if name in path.read_text()
    )
    assert outside == []

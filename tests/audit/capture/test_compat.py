"""The private Django, simple-history and psycopg APIs the capture relies on
(audit.capture.compat) are as it expects: an upgrade that changes one fails
here and in the system check, not silently in production."""

from django.core.checks import run_checks
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

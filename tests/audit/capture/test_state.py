"""What a save carries between the capture's steps is one small object
under one key of the instance, and it survives pickling."""

import pickle

import pytest

from audit.capture import state
from audit.models import AuditTrail
from maintenance.models import MaintenanceRequest

pytestmark = pytest.mark.django_db


def test_a_loaded_instance_carries_only_its_snapshot_under_one_key(staff):
    MaintenanceRequest.objects.create(code="MR720", vessel="MV Tern", title="Bilge", requested_by=staff)
    mr = MaintenanceRequest.objects.get(code="MR720")
    assert [k for k in mr.__dict__ if k.startswith("_audit")] == [state.KEY]
    s = state.peek(mr)
    assert s.snapshot["title"] == "Bilge" and s.snapshot["requested_by_id"] == staff.pk
    assert (s.mode, s.written, s.history_hints) == (None, False, ())
    mr.title = "Bilge pump"
    mr.save()
    assert [k for k in mr.__dict__ if k.startswith("_audit")] == [state.KEY]
    assert state.peek(mr).snapshot["title"] == "Bilge pump"  # the next diff starts from what was saved
    assert (state.peek(mr).mode, state.peek(mr).written) == (None, False)


def test_an_unpickled_instance_diffs_against_what_it_was_loaded_with(staff):
    MaintenanceRequest.objects.create(code="MR721", vessel="MV Tern", title="Bilge", requested_by=staff)
    mr = pickle.loads(pickle.dumps(MaintenanceRequest.objects.get(code="MR721")))
    mr.title = "Bilge pump"
    mr.save()
    trail = AuditTrail.objects.filter(entity_id="MR721").latest("id")
    assert trail.changes == {"title": {"old": "Bilge", "new": "Bilge pump"}}

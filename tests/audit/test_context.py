import threading

import pytest

from audit.capture.writer import current_user_id, write_activity
from audit.context import audit_context, get_context, reason_context


def test_nested_contexts_override_and_inherit_and_reset():
    with audit_context(actor="PE001", reason="outer"):
        with audit_context(reason="inner"):
            assert (get_context().actor, get_context().reason) == ("PE001", "inner")
        assert get_context().reason == "outer"
    assert (get_context().actor, get_context().reason) == (None, "")


def test_context_is_reset_after_an_exception():
    with pytest.raises(ValueError), audit_context(actor="ADM001"):
        raise ValueError
    assert get_context().actor is None


def test_decorator_and_reason_context():
    @audit_context(actor="ST001")
    def who():
        with reason_context(""):
            return current_user_id(), get_context().reason

    assert who() == ("ST001", "")
    with reason_context("Because"):
        assert get_context().reason == "Because"


@pytest.mark.django_db
def test_actor_may_be_a_user_and_is_resolved_when_the_row_is_written(staff):
    with audit_context(actor=staff):
        assert write_activity(activity="Report printed").user_id == "ST001"
    assert write_activity(activity="Nightly").user_id == "system"


def test_threads_do_not_share_the_context():
    seen = {}
    ready = threading.Barrier(2)

    def worker(name):
        with audit_context(actor=name):
            ready.wait()
            seen[name] = current_user_id()

    threads = [threading.Thread(target=worker, args=(n,)) for n in ("PE001", "ST001")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"PE001": "PE001", "ST001": "ST001"}
    assert current_user_id() == "system"

"""Personas and helpers for the alerts tests.

Tasks are rows of the database backend in tests too. Inside a test's transaction nothing
commits, so ``committed()`` runs the on-commit hooks of what its block did, as a real commit
would, and then plays the worker: it runs the ready tasks, and the hooks and tasks those
create, until nothing is left.
"""

import contextlib

import pytest


@pytest.fixture
def settle(django_capture_on_commit_callbacks):
    from core.background import run_pending

    def run():
        for _ in range(50):
            with django_capture_on_commit_callbacks(execute=True) as callbacks:
                ran = run_pending()
            if not ran and not callbacks:
                return
        raise AssertionError("the tasks never settled")

    return run


@pytest.fixture
def committed(django_capture_on_commit_callbacks, settle):
    @contextlib.contextmanager
    def run():
        with django_capture_on_commit_callbacks(execute=True):
            yield
        settle()

    return run


@pytest.fixture
def engineers(make_user, engineer):
    """PE001 and PE002 are told; PE003 is inactive, PE004 pending, PE005 has no e-mail address."""
    from accounts.models import ApprovalStatus

    second = make_user("PE002", role="port_engineer")
    make_user("PE003", role="port_engineer", is_active=False)
    make_user("PE004", role="port_engineer", approval_status=ApprovalStatus.PENDING)
    make_user("PE005", role="port_engineer", email="")
    return [engineer, second]

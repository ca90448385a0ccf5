"""Personas and helpers for the alerts tests.

Tasks run on the immediate backend in tests (at the commit of what enqueued them); inside a
test's transaction nothing commits, so ``committed()`` runs the on-commit hooks, as a real
commit would, including the hooks those hooks register.
"""

import pytest


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    def run():
        return django_capture_on_commit_callbacks(execute=True)

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

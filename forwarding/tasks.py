"""The forwarding's background task (queue ``forwarding``): run every ``AUDIT_FORWARD_EVERY``
seconds by ``manage.py run_scheduler`` while ``AUDIT_FORWARD_SINKS`` names a sink."""

from __future__ import annotations

from core.background import FORWARDING_QUEUE, periodic, task
from forwarding import conf


@periodic(name="audit.forward", every=conf.every)
@task(queue_name=FORWARDING_QUEUE)
def forward_audit() -> dict:
    from forwarding import engine

    sent = engine.forward()
    engine.check_lag()
    return sent

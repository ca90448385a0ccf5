"""PostgreSQL: two worker processes process a burst of events; each event is processed exactly
once and each notification delivered exactly once."""

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from django.db import connection

from alerts.models import AlertRule, Delivery, Outcome
from audit.models import SystemEvent

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
BURST = int(os.environ.get("ALERTS_BURST", "2000"))


def test_two_workers_process_a_burst_exactly_once(tmp_path):
    AlertRule.objects.create(name="Burst", event_type="burst_test", recipient_emails="ops@example.com")
    # written without their on-commit hooks: both workers find the whole burst waiting
    SystemEvent.objects.bulk_create(
        [SystemEvent(event_type="burst_test", severity="warning", event_data=f'{{"n": {n}}}') for n in range(BURST)],
        batch_size=1000)
    s = connection.settings_dict
    mail_dir = tmp_path / "mail"
    env = {**os.environ, "DATABASE_URL": f"postgres://{s['USER']}@{s['HOST']}:{s['PORT'] or 5432}/{s['NAME']}",
           "DJANGO_SETTINGS_MODULE": "marine_center.settings_test", "DEBUG": "0", "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
           "EMAIL_FILE_PATH": str(mail_dir), "AUDIT_SEAL_FILE": str(tmp_path / "seal.json")}
    command = [sys.executable, "manage.py", "process_events", "--until-empty", "--min-age", "0"]
    workers = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True) for _ in range(2)]
    outputs = [w.communicate(timeout=280)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    processed = [int(re.search(r"Processed (\d+) event", out).group(1)) for out in outputs]
    assert sum(processed) == BURST, outputs  # every event claimed by exactly one worker

    assert not SystemEvent.objects.filter(event_type="burst_test", processed=False).exists()
    assert not SystemEvent.objects.filter(event_type="burst_test", processed_at__isnull=True).exists()
    deliveries = Delivery.objects.filter(event__event_type="burst_test")
    assert deliveries.count() == BURST
    assert set(deliveries.values_list("outcome", "attempts").distinct()) == {(Outcome.SENT, 1)}

    sent = Counter()
    for path in mail_dir.iterdir():
        for match in re.finditer(r"^Event: +burst_test \(#(\d+)\)$", path.read_text(), re.MULTILINE):
            sent[int(match.group(1))] += 1
    ids = set(SystemEvent.objects.filter(event_type="burst_test").values_list("id", flat=True))
    assert set(sent) == ids and set(sent.values()) == {1}  # one e-mail per event, none twice

"""The shipped alert rules (SPEC "Acting on events"); admins change them in the admin."""

from django.db import migrations

DEFAULT_RULES = [
    {"name": "Critical emergency: every port engineer",
     "description": "A critical emergency is reported: e-mail every active, approved port engineer.",
     "event_type": "emergency_created", "severity": "critical", "recipient_roles": ["port_engineer"]},
    {"name": "Integrity check failed: administrators",
     "description": "verify_audit found altered, removed or out-of-band audit rows.",
     "event_type": "integrity_check_failed", "recipient_roles": ["admin"]},
    {"name": "Account locked: administrators",
     "description": "An account was locked after repeated failed logins.",
     "event_type": "account_locked", "recipient_roles": ["admin"]},
    {"name": "5 failed logins for one user in 10 minutes: administrators",
     "description": "Someone keeps trying one user id.",
     "trigger": "failed_logins", "threshold": 5, "window_minutes": 10, "group_by": "user",
     "recipient_roles": ["admin"]},
    {"name": "5 failed logins from one IP address in 10 minutes: administrators",
     "description": "One address keeps failing to log in, whatever the user ids.",
     "trigger": "failed_logins", "threshold": 5, "window_minutes": 10, "group_by": "ip",
     "recipient_roles": ["admin"]},
]


def seed(apps, schema_editor):
    AlertRule = apps.get_model("alerts", "AlertRule")
    for rule in DEFAULT_RULES:
        AlertRule.objects.get_or_create(name=rule["name"], defaults=rule)


def unseed(apps, schema_editor):
    AlertRule = apps.get_model("alerts", "AlertRule")
    AlertRule.objects.filter(name__in=[r["name"] for r in DEFAULT_RULES]).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("alerts", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(seed, unseed),
    ]

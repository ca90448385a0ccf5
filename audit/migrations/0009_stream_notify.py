"""Wake the live stream's poller on commit (issue 15.3, ``audit.api.stream_hub``).

PostgreSQL only: a statement-level trigger on the three streamed tables sends
``NOTIFY audit_stream`` (empty payload). PostgreSQL delivers a notification
when its transaction commits, once per transaction whatever the number of
statements, so a listening hub polls as soon as a row can be read. It only
wakes: the rows are still read by id, so a notification lost (no listener at
that moment, a reconnect) delays a row to the hub's next timed poll and
never loses it. SQLite has no notifications; its streams poll.
"""

from django.db import migrations

STREAMED_TABLES = ("activity_logs", "audit_trail", "system_events")
CHANNEL = "audit_stream"  # audit.api.stream_hub.CHANNEL

FUNCTION_SQL = f"""
CREATE OR REPLACE FUNCTION audit_stream_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL}', '');
    RETURN NULL;
END
$$;
"""

TRIGGER_SQL = """
CREATE TRIGGER {t}_stream_notify AFTER INSERT ON {t}
    FOR EACH STATEMENT EXECUTE FUNCTION audit_stream_notify();
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(FUNCTION_SQL)
    for table in STREAMED_TABLES:
        schema_editor.execute(TRIGGER_SQL.format(t=table))


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table in STREAMED_TABLES:
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_stream_notify ON {table}")
    schema_editor.execute("DROP FUNCTION IF EXISTS audit_stream_notify()")


class Migration(migrations.Migration):
    dependencies = [("audit", "0008_trail_user_display")]

    operations = [migrations.RunPython(install, uninstall, elidable=False)]

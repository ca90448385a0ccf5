from django.db import migrations, models

# PostgreSQL: system_events keeps refusing DELETE and TRUNCATE (statement level, as every audit
# table), and its UPDATE goes through a row-level check instead of the blanket refusal: only the
# event-state columns (audit.models.EVENT_STATE_COLUMNS) may change, each once, from false or
# empty to a value; any other change, or a second change of a state column, is refused from any
# role. The test harness's escape (audit.test_rewrite, superusers only) is kept as in 0002.
STATE_SQL = """
CREATE OR REPLACE FUNCTION system_events_state_only() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    state CONSTANT text[] := ARRAY['processed', 'processed_at', 'acknowledged_at', 'acknowledged_by',
                                   'acknowledgement_note'];
BEGIN
    IF coalesce(current_setting('audit.test_rewrite', true), '') = 'on'
       AND current_setting('is_superuser') = 'on' THEN
        RETURN NEW;
    END IF;
    IF (to_jsonb(NEW) - state) IS DISTINCT FROM (to_jsonb(OLD) - state) THEN
        RAISE EXCEPTION 'audit table system_events is append-only: UPDATE refused'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Only the event state (processed, acknowledged) may be set, once.';
    END IF;
    IF (OLD.processed AND NOT NEW.processed)
       OR (OLD.processed_at IS NOT NULL AND NEW.processed_at IS DISTINCT FROM OLD.processed_at)
       OR (OLD.acknowledged_at IS NOT NULL AND NEW.acknowledged_at IS DISTINCT FROM OLD.acknowledged_at)
       OR (OLD.acknowledged_by IS NOT NULL AND NEW.acknowledged_by IS DISTINCT FROM OLD.acknowledged_by)
       OR (OLD.acknowledgement_note IS NOT NULL
           AND NEW.acknowledgement_note IS DISTINCT FROM OLD.acknowledgement_note) THEN
        RAISE EXCEPTION 'audit table system_events is append-only: UPDATE refused (the event state is set once)'
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'An event is processed once and acknowledged once.';
    END IF;
    RETURN NEW;
END
$$;
DROP TRIGGER IF EXISTS system_events_append_only ON system_events;
CREATE TRIGGER system_events_append_only BEFORE DELETE ON system_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_rewrite();
CREATE TRIGGER system_events_state_only BEFORE UPDATE ON system_events
    FOR EACH ROW EXECUTE FUNCTION system_events_state_only();
"""

REVERSE_SQL = """
DROP TRIGGER IF EXISTS system_events_state_only ON system_events;
DROP TRIGGER IF EXISTS system_events_append_only ON system_events;
CREATE TRIGGER system_events_append_only BEFORE UPDATE OR DELETE ON system_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_rewrite();
DROP FUNCTION IF EXISTS system_events_state_only();
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(STATE_SQL, params=None)


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(REVERSE_SQL, params=None)


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0003_trail_failed_index'),
    ]

    operations = [
        migrations.AddField(
            model_name='systemevent',
            name='processed_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='systemevent',
            name='acknowledged_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='systemevent',
            name='acknowledged_by',
            field=models.CharField(blank=True, help_text='user_id of the person who acknowledged it.', max_length=20,
                                   null=True),
        ),
        migrations.AddField(
            model_name='systemevent',
            name='acknowledgement_note',
            field=models.TextField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name='systemevent',
            index=models.Index(condition=models.Q(('processed', False)), fields=['id'], name='event_unprocessed_idx'),
        ),
        migrations.AddIndex(
            model_name='systemevent',
            index=models.Index(condition=models.Q(('acknowledged_at__isnull', True), ('severity', 'critical')),
                               fields=['-timestamp'], name='event_open_critical_idx'),
        ),
        migrations.RunPython(install, uninstall),
    ]

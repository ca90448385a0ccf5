"""PostgreSQL: the purge exception (``SET LOCAL audit.allow_purge = 'on'``) is
honoured only for a superuser or a member of a registered purge role; any
other role that sets it still has its DELETE refused by the append-only trigger.

``audit_purge_roles`` lists the purge roles (``manage.py create_db_roles``
registers the one it creates); nobody but its owner may read or change it,
and the trigger asks it through ``audit_may_purge()``, a SECURITY DEFINER
function, so the application role needs no privilege on it. The harness's
escape (``audit.test_rewrite``, superusers only) is unchanged from 0002.
"""

from django.db import migrations

INSTALL_SQL = """
CREATE TABLE IF NOT EXISTS audit_purge_roles (role_name name PRIMARY KEY);
REVOKE ALL ON audit_purge_roles FROM PUBLIC;

CREATE OR REPLACE FUNCTION audit_may_purge(who name) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = who), false)
        OR EXISTS (SELECT 1 FROM audit_purge_roles r JOIN pg_roles g ON g.rolname = r.role_name
                   WHERE pg_has_role(who, g.oid, 'MEMBER'));
$$;

CREATE OR REPLACE FUNCTION audit_refuse_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('audit.test_rewrite', true), '') = 'on'
       AND current_setting('is_superuser') = 'on' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' AND coalesce(current_setting('audit.allow_purge', true), '') = 'on'
       AND audit_may_purge(current_user) THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'audit table % is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Only manage.py purge_audit, connected as the purge role (DATABASE_PURGE_URL), deletes audit rows.';
END
$$;
"""

# back to 0002's function: the exception open to any role that sets it
REVERSE_SQL = """
CREATE OR REPLACE FUNCTION audit_refuse_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('audit.test_rewrite', true), '') = 'on'
       AND current_setting('is_superuser') = 'on' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' AND coalesce(current_setting('audit.allow_purge', true), '') = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'audit table % is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Only manage.py purge_audit deletes audit rows.';
END
$$;
DROP FUNCTION IF EXISTS audit_may_purge(name);
DROP TABLE IF EXISTS audit_purge_roles;
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(INSTALL_SQL, params=None)


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(REVERSE_SQL, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0005_seal_signatures")]

    operations = [migrations.RunPython(install, uninstall)]

"""manage.py create_db_roles: the three PostgreSQL roles of a least-privilege
deployment (docs/production.md "Database roles"). Run by a superuser; safe to
run again (after every ``migrate``, so new tables get their grants).

- the owner (``--owner``): owns the schema's tables, sequences and functions;
  migrations connect as it (``DATABASE_OWNER_URL``);
- the application (``--app``): owns nothing, cannot disable a trigger; SELECT,
  INSERT, UPDATE, DELETE on the application's tables; on the audit tables
  only SELECT and INSERT, plus UPDATE of the event-state columns of
  system_events (the trigger allows each once); no DELETE or TRUNCATE there;
- the purge (``--purge``): the application's rights plus DELETE on the audit
  tables, registered in ``audit_purge_roles`` so that the append-only
  trigger honours its ``audit.allow_purge`` (``DATABASE_PURGE_URL``).
"""

from __future__ import annotations

import re

from django.core.management.base import BaseCommand, CommandError
from django.db import connections, transaction

from audit.models import AUDIT_MODELS, EVENT_STATE_COLUMNS, AuditSeal, AuditSigningKey

#: The tables the application role may only read and append to: the four audit tables, the seals
#: and the signing keys.
APPEND_ONLY_TABLES = (*AUDIT_MODELS, AuditSeal._meta.db_table, AuditSigningKey._meta.db_table)
ROLE_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Command(BaseCommand):
    help = ("Create or update the owner, application and purge roles of a PostgreSQL deployment "
            "(run as a superuser; idempotent).")

    def add_arguments(self, parser):
        parser.add_argument("--owner", default="marine_owner", help="Owner role (migrations). Default marine_owner.")
        parser.add_argument("--app", default="marine_app", help="Application role (web, workers). Default marine_app.")
        parser.add_argument("--purge", default="marine_purge", help="Purge role (purge_audit). Default marine_purge.")
        for role in ("owner", "app", "purge"):
            parser.add_argument(f"--{role}-password", dest=f"{role}_password", default=None,
                                help=f"Set the {role} role's password (kept as is when omitted).")
        parser.add_argument("--database", default="default", help="Database alias to connect with (a superuser).")

    def handle(self, *args, **options):
        connection = connections[options["database"]]
        if connection.vendor != "postgresql":
            raise CommandError("create_db_roles is for PostgreSQL; SQLite has no roles.")
        names = {role: options[role] for role in ("owner", "app", "purge")}
        for role, name in names.items():
            if not ROLE_RE.match(name or ""):
                raise CommandError(f"--{role} {name!r}: use lower-case letters, digits and '_' (at most 63).")
        if len(set(names.values())) != 3:
            raise CommandError("The owner, application and purge roles must be three different roles.")
        with connection.cursor() as cursor:
            cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            if not cursor.fetchone()[0]:
                raise CommandError("Run create_db_roles connected as a superuser (e.g. DATABASE_URL=postgres://postgres@...).")
        with transaction.atomic(using=options["database"]), connection.cursor() as cursor:
            for role, name in names.items():
                self._role(cursor, name, options[f"{role}_password"])
            self._grant(cursor, connection.settings_dict["NAME"], **names)
        self.stdout.write(
            f"Roles ready: owner {names['owner']} (DATABASE_OWNER_URL), application {names['app']} "
            f"(DATABASE_URL), purge {names['purge']} (DATABASE_PURGE_URL)."
        )

    def _role(self, cursor, name, password):
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name])
        verb = "ALTER" if cursor.fetchone() else "CREATE"
        # no superuser, no role or database creation, no RLS bypass, no replication
        cursor.execute(f"{verb} ROLE {_ident(name)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
                       "NOREPLICATION NOBYPASSRLS")
        if password is not None:
            cursor.execute(f"ALTER ROLE {_ident(name)} PASSWORD %s", [password])

    def _grant(self, cursor, database, *, owner, app, purge):
        o, a, p = _ident(owner), _ident(app), _ident(purge)
        cursor.execute(f"GRANT CONNECT, TEMPORARY ON DATABASE {_ident(database)} TO {o}, {a}, {p}")
        cursor.execute(f"GRANT USAGE, CREATE ON SCHEMA public TO {o}")
        cursor.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        cursor.execute(f"GRANT USAGE ON SCHEMA public TO {a}, {p}")
        # the owner takes over everything in the schema (tables a superuser's migrate created)
        cursor.execute(
            "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S') "
            "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i') AND c.relkind = 'S')"
        )
        kinds = {"r": "TABLE", "p": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW", "S": "SEQUENCE"}
        for relname, relkind in cursor.fetchall():
            cursor.execute(f"ALTER {kinds[relkind]} public.{_ident(relname)} OWNER TO {o}")
        cursor.execute(
            "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = 'public'"
        )
        for (signature,) in cursor.fetchall():
            cursor.execute(f"ALTER FUNCTION {signature} OWNER TO {o}")
        # the application: data rights on every table, then the audit tables narrowed
        cursor.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {a}, {p}")
        cursor.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {a}")
        cursor.execute(f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {a}, {p}")
        cursor.execute(f"ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA public "
                       f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {a}")
        cursor.execute(f"ALTER DEFAULT PRIVILEGES FOR ROLE {o} IN SCHEMA public "
                       f"GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {a}, {p}")
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename = ANY(%s)",
                       [list(APPEND_ONLY_TABLES)])
        audit_tables = [row[0] for row in cursor.fetchall()]
        for table in audit_tables:
            cursor.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON public.{_ident(table)} FROM {a}")
        if "system_events" in audit_tables:
            columns = ", ".join(_ident(c) for c in EVENT_STATE_COLUMNS)
            cursor.execute(f"GRANT UPDATE ({columns}) ON public.system_events TO {a}")
        cursor.execute("SELECT to_regclass('public.audit_purge_roles') IS NOT NULL")
        if cursor.fetchone()[0]:
            cursor.execute(f"REVOKE ALL ON public.audit_purge_roles FROM {a}, {p}")
            cursor.execute("INSERT INTO public.audit_purge_roles (role_name) VALUES (%s) ON CONFLICT DO NOTHING",
                           [purge])
        # the purge: what the application may do, and DELETE on the audit tables
        cursor.execute(f"GRANT {a} TO {p}")
        for table in audit_tables:
            cursor.execute(f"GRANT DELETE ON public.{_ident(table)} TO {p}")

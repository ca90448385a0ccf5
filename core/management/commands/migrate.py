"""``manage.py migrate``, connected as the owner role when ``DATABASE_OWNER_URL``
is set (docs/production.md "Database roles"): the tables belong to the owner,
the application role (DATABASE_URL) owns nothing. Unset, it is Django's migrate
on DATABASE_URL. Everything a migration does (schema, data migrations, the
audit capture of their rows) goes through the one ``default`` connection, so
the owner's URL replaces that connection's settings for this process only."""

import environ
from django.conf import settings
from django.core.management.commands.migrate import Command as DjangoMigrate
from django.db import DEFAULT_DB_ALIAS, connections


class Command(DjangoMigrate):
    help = DjangoMigrate.help + " Connects as DATABASE_OWNER_URL when it is set."

    def handle(self, *args, **options):
        url = getattr(settings, "DATABASE_OWNER_URL", "")
        if url and options["database"] == DEFAULT_DB_ALIAS:
            connection = connections[DEFAULT_DB_ALIAS]
            connection.close()
            owner = environ.Env.db_url_config(url)
            for key in ("NAME", "USER", "PASSWORD", "HOST", "PORT"):
                connection.settings_dict[key] = owner.get(key, "")
            if options["verbosity"] >= 1:
                self.stdout.write(f"Migrating as {owner.get('USER') or 'the owner'} (DATABASE_OWNER_URL).")
        return super().handle(*args, **options)

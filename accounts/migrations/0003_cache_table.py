"""The database cache table (``CACHE_URL`` defaults to ``dbcache://django_cache``),
created with the schema so that every process of ``make run`` or a deployment
shares the lock-out counters from the first request. With Redis in CACHE_URL
there is no database cache and this does nothing."""

from django.core.management import call_command
from django.db import migrations


def create_cache_tables(apps, schema_editor):
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_remove_historicaluser_failed_login_count")]

    operations = [migrations.RunPython(create_cache_tables, migrations.RunPython.noop, elidable=True)]

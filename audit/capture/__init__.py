"""Automatic change capture: how a save on a tracked model becomes audit rows.

    model.save() / delete() / QuerySet.update() ...      (maintenance, emergencies, accounts)
        │  querysets.AuditedModelMixin / AuditedQuerySet
        ▼
    receivers  (post_init, pre_save, post_save, post_delete, m2m_changed)
        │  registry: which models are tracked, their entity type and masked fields
        ▼
    engine     (snapshot, diff.py's field diff, the one record_change path)
        │  history: the django-simple-history snapshot row of the same change
        ▼
    writer     (the one write path: audit_trail + update_history rows,
                one statement on PostgreSQL)

Nothing in this package imports from ``audit.api``, ``audit.web``,
``audit.admin`` or ``audit.operations``; see ``docs/capture.md``.
"""

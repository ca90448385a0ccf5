"""Automatic change capture: how a save on a tracked model becomes audit rows.

    model.save() / delete()              QuerySet.update() / delete() / bulk_*()
      │ querysets.AuditedModelMixin        │ querysets.AuditedQuerySet
      │ (compat.ModelHooks: the row's      │ (rows read, locked and written
      │  own UPDATE / INSERT)              │  together; recorded row by row)
      ▼                                    │
    receivers  post_init, pre_save,        │
      post_save, pre/post_delete,          │
      m2m_changed                          │
      │ registry: tracked models (@track) │
      │ state: the instance's CaptureState │
      ▼                                    ▼
    engine  the diff (diff.py), foreign keys as codes, the snapshot row (history.py)
      ▼
    writer.write()  audit_trail + update_history + simple-history rows:
                    one statement on PostgreSQL (the row's own UPDATE or INSERT
                    at its head), two INSERTs in the save's transaction elsewhere

Each module imports only those below it; nothing here imports ``audit.api``,
``audit.web``, ``audit.admin`` or ``audit.operations``. ``compat`` holds every
private Django/simple-history/psycopg API the path relies on. The walk-through,
with the statement a save issues on each database: ``docs/capture.md``.
"""

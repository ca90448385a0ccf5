"""Text length limits declared once, on the model field.

The API's serializers, the portal's forms and the services read a field's limit with
:func:`max_length` instead of restating the number, so the model's ``max_length`` is the one
place to change it. Text columns without a database limit (descriptions, comment bodies) have
theirs as a named constant beside the model.
"""

from __future__ import annotations

#: what a change reason may hold, on every surface that asks for one (the portal's reason box,
#: the admin's, the API's ``change_reason``); the audit rows keep it in a text column
CHANGE_REASON_MAX_LENGTH = 500


def max_length(model, name: str) -> int:
    """The ``max_length`` of ``model``'s field ``name`` (``max_length(Emergency, "vessel")``)."""
    return model._meta.get_field(name).max_length

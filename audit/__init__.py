"""The audit trail: who did what, when, from where and why.

The seed's functions are imported from their modules, not from this package
(importing models here would break app loading)::

    from audit.services import log_activity, log_entity_change, log_system_event
    from audit.selectors import (
        get_entity_change_history,
        get_real_time_events,
        get_user_activity_timeline,
    )
    from audit.context import audit_context  # actor and reason outside a request
"""

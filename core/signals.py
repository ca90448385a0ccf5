"""Signals that domain code sends and the audit app records. Declared here so
that domain apps never import the audit app's internals.

- token_rejected(request, reason): the Bearer authentication refused a token.
- domain_event(event_type, entity_type, entity_id, event_data, severity, request=None):
  a milestone for ``system_events`` (emergency_created, request_approved,
  user_approved, account_locked, ...). severity: info|warning|error|critical.
- activity(activity, details, request=None): a user activity for
  ``activity_logs`` that the middleware cannot infer from the URL alone
  (uploads, downloads, comments sent, approvals, profile changes).
"""

from django.dispatch import Signal

token_rejected = Signal()
domain_event = Signal()
activity = Signal()

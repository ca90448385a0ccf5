"""Signals that domain code sends and the audit app records. Declared here so
that domain apps never import the audit app's internals.

- token_rejected(request, reason): the Bearer authentication refused a token.
- domain_event(event_type, entity_type, entity_id, event_data, severity, request=None):
  a milestone for ``system_events`` (emergency_created, request_approved,
  user_approved, account_locked, ...). severity: info|warning|error|critical.
- system_event_committed(event_id): a ``system_events`` row was committed (sent by the
  audit writer, the one place events are written, from ``on_commit``); the alerts app
  enqueues its processing.
- login_failure_recorded(activity_id, user_id, ip_address): a failed login's activity row
  was written (the alerts app counts them against its failed-login rules).
- activity(activity, details, request=None): a user activity for
  ``activity_logs`` that the middleware cannot infer from the URL alone
  (uploads, downloads, comments sent, approvals, profile changes); every service
  action declared with ``core.actions.action`` sends one.
- action_refused(target, actor, action_type, error, reason): a business rule refused a
  person's action on ``target`` (sent by ``core.actions`` after the refused transaction
  rolled back); the audit app records it as a ``failed`` audit_trail row.
- notification_sent(event, recipient_user, channel): an alert delivery about ``event`` (a
  SystemEvent) reached the user ``recipient_user`` (a user_id) on ``channel``; sent by
  ``alerts.processing`` after the delivery is marked sent.
"""

from django.dispatch import Signal

token_rejected = Signal()
domain_event = Signal()
activity = Signal()
system_event_committed = Signal()
login_failure_recorded = Signal()
action_refused = Signal()
notification_sent = Signal()

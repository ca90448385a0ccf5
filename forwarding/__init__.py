"""Forwarding of the audit stream to security monitoring systems (issue 16.3).

New rows of the four audit tables (activity_logs, audit_trail, update_history,
system_events) are sent, in id order per table and at least once, to each sink
named in ``AUDIT_FORWARD_SINKS``: syslog (RFC 5424 over TCP, TLS or UDP) and
JSON over HTTP (Splunk HEC, OpenTelemetry OTLP/HTTP, or JSON Lines). One record
per row, in the schema of :mod:`forwarding.schema` (OCSF classes). A cursor per
sink and table (:class:`forwarding.models.ForwardCursor`) says how far each
sink has been served, so forwarding resumes after a restart or an outage.
See docs/operations.md "Forwarding".
"""

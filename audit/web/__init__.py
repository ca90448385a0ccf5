"""The audit pages people read: the audit-log page, the live dashboard,
"My activity" and entity timelines, and how records are presented."""

"""The audit admin: the four record tables (read-only) and the operations'
tables (the seal chain, read-only; legal holds). Importing this package
registers them with the admin site."""

from audit.admin import operations, records  # noqa: F401 - registers the admins

"""Dates and times as the portal writes them, for everything Django formats
by default (the admin's lists and change pages, ``{{ value }}`` in a
template): ``2026-12-02 05:44:13 UTC``, 24-hour, to the second, with the zone
(TIME_ZONE is UTC, so ``T`` prints "UTC")."""

DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s T"
DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i:s"

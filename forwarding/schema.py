"""One forwarded record per audit row, mapped onto OCSF 1.1 classes.

Every record carries the Open Cybersecurity Schema Framework's base attributes
(``class_uid``, ``category_uid``, ``activity_id``, ``type_uid`` = class_uid * 100
+ activity_id, ``severity_id``, ``status_id``, ``time`` in epoch milliseconds,
``metadata``) and what its class describes (``actor``, ``src_endpoint``,
``entity``, ``user``, ``api``). ``metadata.uid`` is the stable id
``<source>:<table>:<row id>``: a record sent twice (at-least-once delivery) has the
same uid. ``metadata.correlation_uid`` is the request id. The row itself, column
by column, is under ``unmapped``. The table is in docs/operations.md "Forwarding".
"""

from __future__ import annotations

import json

from django.conf import settings

from audit.models import AUDIT_TABLES

OCSF_VERSION = "1.1.0"

AUTHENTICATION = (3002, "Authentication", 3)
ACCOUNT_CHANGE = (3001, "Account Change", 3)
ENTITY_MANAGEMENT = (3004, "Entity Management", 3)
API_ACTIVITY = (6003, "API Activity", 6)
CATEGORIES = {3: "Identity & Access Management", 6: "Application Activity"}

SEVERITY_ID = {"info": 1, "warning": 3, "error": 4, "critical": 5}
SEVERITY_NAME = {1: "Informational", 3: "Medium", 4: "High", 5: "Critical"}

# Authentication: 1 Logon, 2 Logoff
AUTH_ACTIVITIES = {"Login": (1, "Logon", 1), "Logout": (2, "Logoff", 1), "Failed login": (1, "Logon", 2)}
# API Activity: 1 Create, 2 Read, 3 Update, 4 Delete
API_METHODS = {"POST": (1, "Create"), "GET": (2, "Read"), "HEAD": (2, "Read"), "PUT": (3, "Update"),
               "PATCH": (3, "Update"), "DELETE": (4, "Delete")}
# Entity Management: 1 Create, 2 Read, 3 Update, 4 Delete
ENTITY_ACTIONS = {"create": (1, "Create"), "update": (3, "Update"), "delete": (4, "Delete"),
                  "bulk_update": (3, "Update"), "status_change": (3, "Update"), "assign": (3, "Update"),
                  "revert": (3, "Update")}
# Account Change: 1 Create, 3 Password Change, 4 Password Reset, 6 Delete, 7 Attach Policy, 9 Lock
ACCOUNT_ACTIONS = {"create": (1, "Create"), "delete": (6, "Delete"), "password_reset": (4, "Password Reset"),
                   "role_change": (7, "Attach Policy"), "permission_change": (7, "Attach Policy")}
ACCOUNT_EVENTS = {"account_locked": (9, "Lock")}
OTHER = (99, "Other")

#: The tables forwarded, one cursor each, in the audit tables' order.
TABLES = AUDIT_TABLES


def source() -> str:
    """The installation's name in stable ids (``AUDIT_FORWARD_SOURCE``, default "msc")."""
    return getattr(settings, "AUDIT_FORWARD_SOURCE", "") or "msc"


def stable_id(table: str, row_id: int) -> str:
    return f"{source()}:{table}:{row_id}"


def _ms(moment) -> int:
    return int(moment.timestamp() * 1000)


def _base(cls, activity, *, table, row, severity_id=1, status_id=1, message=""):
    class_uid, class_name, category_uid = cls
    activity_id, activity_name = activity[:2]
    return {
        "class_uid": class_uid,
        "class_name": class_name,
        "category_uid": category_uid,
        "category_name": CATEGORIES[category_uid],
        "activity_id": activity_id,
        "activity_name": activity_name,
        "type_uid": class_uid * 100 + activity_id,
        "severity_id": severity_id,
        "severity": SEVERITY_NAME.get(severity_id, "Informational"),
        "status_id": status_id,
        "status": "Success" if status_id == 1 else "Failure",
        "time": _ms(row.timestamp),
        "message": message,
        "metadata": {
            "uid": stable_id(table, row.pk),
            "correlation_uid": getattr(row, "request_id", "") or "",
            "version": OCSF_VERSION,
            "log_name": table,
            "product": {"name": "Marine Service Center", "vendor_name": "Marine Service Center"},
        },
    }


def _unmapped(row) -> dict:
    """The row's columns (all of them: a column added to an audit table is forwarded too)."""
    out = {}
    for name in [f.attname for f in row._meta.concrete_fields]:
        value = getattr(row, name)
        out[name] = value.isoformat().replace("+00:00", "Z") if hasattr(value, "isoformat") else value
    return out


def _activity(row) -> dict:
    if row.activity in AUTH_ACTIVITIES:
        activity_id, name, status_id = AUTH_ACTIVITIES[row.activity]
        record = _base(AUTHENTICATION, (activity_id, name), table="activity_logs", row=row, status_id=status_id,
                       severity_id=3 if status_id == 2 else 1, message=row.activity)
        record["user"] = {"uid": row.user_id}
    else:
        activity = API_METHODS.get((row.method or "").upper(), OTHER)
        failed = bool(row.status_code and row.status_code >= 400)
        record = _base(API_ACTIVITY, activity, table="activity_logs", row=row, status_id=2 if failed else 1,
                       message=row.activity)
        record["api"] = {"operation": row.activity, "request": {"uid": row.request_id or ""}}
        record["http_request"] = {"http_method": row.method or "", "url": {"path": row.path or ""},
                                  "user_agent": row.user_agent or ""}
        if row.status_code:
            record["http_response"] = {"code": row.status_code}
    record["actor"] = {"user": {"uid": row.user_id}}
    record["src_endpoint"] = {"ip": row.ip_address or ""}
    record["unmapped"] = _unmapped(row)
    return record


def _trail(row) -> dict:
    failed = row.status == "failed"
    if row.action_type in ("login", "logout"):
        activity = (1, "Logon") if row.action_type == "login" else (2, "Logoff")
        record = _base(AUTHENTICATION, activity, table="audit_trail", row=row, status_id=2 if failed else 1)
        record["user"] = {"uid": row.entity_id}
    elif row.entity_type == "user" and (row.action_type in ACCOUNT_ACTIONS or row.action_type == "update"):
        activity = ACCOUNT_ACTIONS.get(row.action_type, OTHER)
        record = _base(ACCOUNT_CHANGE, activity, table="audit_trail", row=row, status_id=2 if failed else 1)
        record["user"] = {"uid": row.entity_id}
    else:
        activity = ENTITY_ACTIONS.get(row.action_type, OTHER)
        record = _base(ENTITY_MANAGEMENT, activity, table="audit_trail", row=row, status_id=2 if failed else 1)
    record["severity_id"] = 3 if failed else 1
    record["severity"] = SEVERITY_NAME[record["severity_id"]]
    record["message"] = f"{row.action_type} {row.entity_type} {row.entity_id}".strip()
    record["entity"] = {"type": row.entity_type, "uid": row.entity_id}
    record["actor"] = {"user": {"uid": row.user_id}}
    record["src_endpoint"] = {"ip": row.ip_address or ""}
    record["unmapped"] = _unmapped(row)
    return record


def _history(row) -> dict:
    cls = ACCOUNT_CHANGE if row.table_name in ("users", "accounts_user") else ENTITY_MANAGEMENT
    record = _base(cls, (3, "Update") if cls is ENTITY_MANAGEMENT else OTHER, table="update_history", row=row,
                   message=f"{row.table_name} {row.record_id}: {row.field_name} changed")
    record["entity"] = {"type": row.table_name, "uid": row.record_id}
    record["actor"] = {"user": {"uid": row.user_id}}
    record["unmapped"] = _unmapped(row)
    return record


def _event(row) -> dict:
    severity_id = SEVERITY_ID.get(row.severity, 1)
    if row.event_type in ACCOUNT_EVENTS:
        record = _base(ACCOUNT_CHANGE, ACCOUNT_EVENTS[row.event_type], table="system_events", row=row,
                       severity_id=severity_id, message=row.event_type)
        record["user"] = {"uid": row.entity_id}
    else:
        record = _base(ENTITY_MANAGEMENT, OTHER, table="system_events", row=row, severity_id=severity_id,
                       message=row.event_type)
    record["activity_name"] = row.event_type if record["activity_id"] == 99 else record["activity_name"]
    record["entity"] = {"type": row.entity_type, "uid": row.entity_id}
    data = row.event_data
    try:
        data = json.loads(data) if data else ""
    except ValueError:
        pass
    record["unmapped"] = _unmapped(row)
    record["unmapped"]["event_data"] = data
    return record


BUILDERS = {"activity_logs": _activity, "audit_trail": _trail, "update_history": _history, "system_events": _event}


def record(table: str, row) -> dict:
    """The forwarded record of one row of ``table``."""
    return BUILDERS[table](row)

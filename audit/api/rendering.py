"""The rows of the real-time lists as JSON text, and the renderer that splices them.

A list at ``limit=1000`` spent most of its time in Python, row by row: the
driver parsing each timestamp into a ``datetime``, ``values()`` building a
dict, :func:`~core.fields.iso_ms` formatting the timestamp back into text,
then ``json.dumps`` escaping every string. On PostgreSQL the database now
writes each row as its JSON text (:class:`JSONRow`: compact, keys in the
documented order, timestamps as ``iso_ms`` writes them, strings escaped as
``json.dumps`` escapes them) and the response splices the texts in as they
come (:class:`JSONRows`, :class:`SplicingJSONRenderer`). Other databases get
the same text from the row's values in Python. Either way the body is, byte
for byte, what DRF's ``JSONRenderer`` writes for the dicts the views built
before.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring

from django.db import connections
from django.db.models import Expression, F, QuerySet, TextField
from rest_framework.renderers import JSONRenderer

from core.fields import iso_ms

# the kinds of value a column holds in the JSON row
INT, TEXT, TIME, BOOL = "int", "text", "time", "bool"


@dataclass(frozen=True)
class Column:
    """One key of a JSON row: ``key`` in the output, ``field`` the ORM path it is read from
    (``audit__action_type`` follows a foreign key), ``kind`` one of INT, TEXT, TIME, BOOL;
    ``empty``: the text written when the value is NULL or empty (``or "update"`` in Python)."""

    key: str
    field: str
    kind: str
    empty: str | None = None


def columns(*specs: tuple) -> tuple[Column, ...]:
    """``columns(("id", INT), ("action_type", TEXT, "audit__action_type", "update"), ...)``: the
    field defaults to the key."""
    out = []
    for spec in specs:
        key, kind, *rest = spec
        field = rest[0] if rest else key
        empty = rest[1] if len(rest) > 1 else None
        out.append(Column(key=key, field=field, kind=kind, empty=empty))
    return tuple(out)


# --- PostgreSQL: the database writes the row -----------------------------------------------

#: iso_ms in to_char: milliseconds truncated (MS), UTC, a literal T and Z
_PG_TIME = "'\"' || to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') || '\"'"


def _pg_value(column: Column, sql: str) -> str:
    if column.empty is not None:
        return f"to_json(COALESCE(NULLIF({sql}, ''), {_pg_literal(column.empty)}))::text"
    if column.kind == INT:
        return f"COALESCE(({sql})::text, 'null')"
    if column.kind == TEXT:  # to_json escapes as json.dumps does: \" \\ \b \f \n \r \t, \\u00XX below 0x20
        return f"COALESCE(to_json({sql})::text, 'null')"
    if column.kind == TIME:
        return f"COALESCE({_PG_TIME.format(sql)}, 'null')"
    if column.kind == BOOL:
        return f"(CASE WHEN {sql} IS NULL THEN 'null' WHEN {sql} THEN 'true' ELSE 'false' END)"
    raise ValueError(f"unknown column kind {column.kind!r}")


def _pg_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class JSONRow(Expression):
    """The row as one compact JSON object, written by PostgreSQL (``'{"id":' || id || ...``)."""

    output_field = TextField()

    def __init__(self, spec: Sequence[Column]):
        super().__init__(output_field=TextField())
        self.spec = tuple(spec)
        self.source = [F(column.field) for column in self.spec]

    def get_source_expressions(self):
        return self.source

    def set_source_expressions(self, exprs):
        self.source = list(exprs)

    def as_sql(self, compiler, connection):
        if connection.vendor != "postgresql":
            raise NotImplementedError("JSONRow is written by PostgreSQL; json_rows() builds it in Python elsewhere")
        pieces, params = [], []
        for index, (column, expression) in enumerate(zip(self.spec, self.source, strict=True)):
            sql, expression_params = compiler.compile(expression)
            prefix = ("{" if index == 0 else ",") + json.dumps(column.key) + ":"
            pieces.append(_pg_literal(prefix))
            pieces.append(_pg_value(column, sql))
            params.extend(expression_params)
        pieces.append("'}'")
        return "(" + " || ".join(pieces) + ")", params


# --- elsewhere: the same text from Python --------------------------------------------------


def _py_value(column: Column):
    if column.empty is not None:
        empty = encode_basestring(column.empty)
        return lambda value: encode_basestring(value) if value else empty
    if column.kind == INT:
        return lambda value: "null" if value is None else str(int(value))
    if column.kind == TEXT:
        return lambda value: "null" if value is None else encode_basestring(str(value))
    if column.kind == TIME:
        return lambda value: "null" if value is None else '"' + iso_ms(value) + '"'
    if column.kind == BOOL:
        return lambda value: "null" if value is None else ("true" if value else "false")
    raise ValueError(f"unknown column kind {column.kind!r}")


def json_rows(queryset: QuerySet, spec: Sequence[Column], *, limit: int) -> list[str]:
    """The first ``limit`` rows of ``queryset`` (in its order), each as the compact JSON text of
    the dict ``{column.key: value}`` in ``spec``'s order."""
    if connections[queryset.db].vendor != "postgresql":
        return _python_rows(queryset, spec, limit=limit)
    return list(queryset.annotate(_json_row=JSONRow(spec)).values_list("_json_row", flat=True)[:limit])


def _python_rows(queryset: QuerySet, spec: Sequence[Column], *, limit: int) -> list[str]:
    template = "{" + ",".join(json.dumps(column.key).replace("%", "%%") + ":%s" for column in spec) + "}"
    writers = [_py_value(column) for column in spec]
    rows = queryset.values_list(*(column.field for column in spec))[:limit]
    return [template % tuple(write(value) for write, value in zip(writers, row, strict=True)) for row in rows]


# --- the response ----------------------------------------------------------------------------


class JSONRows:
    """A list of rows already written as JSON text (:func:`json_rows`), for a response's data."""

    __slots__ = ("rows",)

    def __init__(self, rows: list[str]):
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def text(self) -> str:
        return "[" + ",".join(self.rows) + "]"

    def decoded(self) -> list:
        return [json.loads(row) for row in self.rows]


class SplicingJSONRenderer(JSONRenderer):
    """DRF's ``JSONRenderer``, except that a top-level value that is :class:`JSONRows` goes into
    the body as its text, unparsed. The bytes are those ``JSONRenderer`` writes for the decoded
    rows (an indented or non-compact rendering decodes them and takes that path)."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if not isinstance(data, dict) or not any(isinstance(value, JSONRows) for value in data.values()):
            return super().render(data, accepted_media_type, renderer_context)
        renderer_context = renderer_context or {}
        # the rows are compact and keep non-ASCII characters as they are: another rendering decodes them
        if self.get_indent(accepted_media_type, renderer_context) is not None or not self.compact or self.ensure_ascii:
            plain = {k: v.decoded() if isinstance(v, JSONRows) else v for k, v in data.items()}
            return super().render(plain, accepted_media_type, renderer_context)
        encode = self.encoder_class(ensure_ascii=self.ensure_ascii, allow_nan=not self.strict,
                                    separators=(",", ":")).encode
        body = "{" + ",".join(
            encode(key) + ":" + (value.text() if isinstance(value, JSONRows) else encode(value))
            for key, value in data.items()
        ) + "}"
        # as JSONRenderer: the two line separators JavaScript does not take in a string literal
        return body.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode()

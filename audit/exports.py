"""Exports of audit_trail rows: CSV (the API's ``export-audit`` and the
``export_audit`` command) and JSON Lines (the command).

Rows are streamed from the database in chunks
(``values_list(...).iterator(chunk_size=2000)``), never loaded whole, and
turned into text a batch of rows at a time, so memory stays flat whatever
the size of the export.

CSV follows OWASP's CSV-injection guidance: every cell is quoted and any
text cell beginning with ``=``, ``+``, ``-``, ``@``, tab, carriage return or
line feed gets a leading ``'`` so that no spreadsheet evaluates it.

Under ASGI a sync iterator given to ``StreamingHttpResponse`` is consumed
whole before the first byte goes out; :func:`acsv_chunks` is the async
iterator for that case (each batch is produced by ``sync_to_async`` in the
one thread that owns the database connection).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import AsyncIterator, Iterable, Iterator

from asgiref.sync import sync_to_async
from django.db.models import QuerySet

from core.fields import iso_ms

#: The audit_trail columns, in file order (the CSV header row).
COLUMNS: tuple[str, ...] = (
    "id",
    "timestamp",
    "user_id",
    "action_type",
    "entity_type",
    "entity_id",
    "old_value",
    "new_value",
    "ip_address",
    "status",
    "error_message",
    "change_reason",
    "request_id",
    "source",
)
#: The CSV's header row: each column's label, in :data:`COLUMNS` order (the actor as "User", written
#: "ST001 (Sam Staff)"). JSON Lines keep the column names.
CSV_HEADER: tuple[str, ...] = (
    "ID", "Time (UTC)", "User", "Action", "Entity type", "Entity ID", "Old values", "New values", "IP address",
    "Status", "Error message", "Change reason", "Request ID", "Source",
)
_USER = COLUMNS.index("user_id")
CHUNK_SIZE = 2000  # rows fetched from the database per round trip
ROWS_PER_WRITE = 500  # rows turned into one piece of text
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n")


def neutralise(value) -> object:
    """One CSV cell: timestamps as ISO 8601 UTC with milliseconds, ``None``
    as empty, text that a spreadsheet would evaluate prefixed with ``'``."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return iso_ms(value)
    if isinstance(value, str):
        return "'" + value if value.startswith(FORMULA_PREFIXES) else value
    return value


def person_cell(code, name=None) -> str:
    """A person in a CSV cell: "ST001 (Sam Staff)", the code alone when no name is known."""
    code = "" if code is None else str(code)
    return f"{code} ({name})" if code and name else code


def person_names(codes) -> dict[str, str]:
    """``{user_id: full name}`` of the accounts among ``codes`` (one query; none for no codes)."""
    from django.contrib.auth import get_user_model

    codes = {str(c) for c in codes if c}
    if not codes:
        return {}
    return {code: name for code, name in
            get_user_model()._default_manager.filter(user_id__in=codes).values_list("user_id", "full_name") if name}


def captured_name(code, display) -> str | None:
    """The name inside a display text captured with a change ("PE001 · Priya Eriksen" -> "Priya Eriksen")."""
    prefix = f"{code} · "
    return display[len(prefix):] if display and code and str(display).startswith(prefix) else None


def people_rows(rows: Iterable[tuple], *, size: int = ROWS_PER_WRITE) -> Iterator[list]:
    """Rows of :data:`COLUMNS` plus ``user_display`` as CSV rows: the actor as :func:`person_cell`,
    named as captured with the change, else as named now (one lookup per ``size`` rows)."""
    for batch in _batches(rows, size):
        missing = {row[_USER] for row in batch if not captured_name(row[_USER], row[-1])}
        names = person_names(missing)
        for row in batch:
            code = row[_USER]
            cells = list(row[:-1])
            cells[_USER] = person_cell(code, captured_name(code, row[-1]) or names.get(code))
            yield cells


def iter_rows(queryset: QuerySet, *, chunk_size: int = CHUNK_SIZE) -> Iterator[tuple]:
    """The rows of an audit_trail queryset as tuples in :data:`COLUMNS` order,
    fetched ``chunk_size`` at a time (a server-side cursor on PostgreSQL)."""
    return queryset.values_list(*COLUMNS).iterator(chunk_size=chunk_size)


def _batches(rows: Iterable[tuple], size: int) -> Iterator[list[tuple]]:
    batch: list[tuple] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def csv_chunks(queryset: QuerySet, *, header: bool = True, rows_per_write: int = ROWS_PER_WRITE,
               on_rows=None) -> Iterator[str]:
    """CSV text in pieces: the header row of labels first, then ``rows_per_write``
    rows per piece, the actor as "ST001 (Sam Staff)". ``on_rows(n)`` is called after each
    piece (progress)."""
    rows = queryset.values_list(*COLUMNS, "user_display").iterator(chunk_size=CHUNK_SIZE)
    yield from table_chunks(CSV_HEADER if header else None, people_rows(rows, size=rows_per_write),
                            rows_per_write=rows_per_write, on_rows=on_rows)


def table_chunks(header: Iterable[str] | None, rows: Iterable[Iterable], *, rows_per_write: int = ROWS_PER_WRITE,
                 on_rows=None) -> Iterator[str]:
    """Any table as safe CSV text in pieces (the one CSV writer of the
    project: the API export, the command and the admin's exports): every
    cell quoted and passed through :func:`neutralise`, the header row first
    (if given), then ``rows_per_write`` rows per piece."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    if header is not None:
        writer.writerow([neutralise(str(name)) for name in header])
        yield _drain(buffer)
    for batch in _batches(rows, rows_per_write):
        writer.writerows([neutralise(cell) for cell in row] for row in batch)
        yield _drain(buffer)
        if on_rows is not None:
            on_rows(len(batch))


def jsonl_chunks(queryset: QuerySet, *, rows_per_write: int = ROWS_PER_WRITE, on_rows=None) -> Iterator[str]:
    """JSON Lines: one object per audit_trail row, keys in :data:`COLUMNS`
    order, timestamps ISO 8601 UTC with milliseconds (no CSV prefixing)."""
    for batch in _batches(iter_rows(queryset), rows_per_write):
        lines = [
            json.dumps(
                {name: iso_ms(value) if isinstance(value, dt.datetime) else value for name, value in zip(COLUMNS, row, strict=True)},
                ensure_ascii=False,
            )
            for row in batch
        ]
        yield "\n".join(lines) + "\n"
        if on_rows is not None:
            on_rows(len(batch))


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate(0)
    return text


async def aiterate(iterator: Iterator[str]) -> AsyncIterator[str]:
    """An async iterator over a sync one: each ``next()`` runs through
    ``sync_to_async`` (thread-sensitive, so the database connection and its
    server-side cursor stay in one thread)."""
    done = object()
    step = sync_to_async(next, thread_sensitive=True)
    try:
        while True:
            chunk = await step(iterator, done)
            if chunk is done:
                return
            yield chunk
    finally:  # client gone or export over: release the cursor in its own thread
        close = getattr(iterator, "close", None)
        if close is not None:
            await sync_to_async(close, thread_sensitive=True)()


def acsv_chunks(queryset: QuerySet, **kwargs) -> AsyncIterator[str]:
    return aiterate(csv_chunks(queryset, **kwargs))


def export_filename(*, start: dt.datetime, end: dt.datetime, ext: str = "csv") -> str:
    """``audit-trail_20250120T1430Z_20250121T1430Z.csv``: the time range, UTC."""
    fmt = "%Y%m%dT%H%MZ"
    return f"audit-trail_{start.astimezone(dt.UTC):{fmt}}_{end.astimezone(dt.UTC):{fmt}}.{ext}"

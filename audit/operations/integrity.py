"""Tamper evidence: a chain of seals over the audit rows, anchored outside the database.

**Sealing** (:func:`seal`, ``manage.py seal_audit``) hashes each audit row
written since the previous seal in a canonical form (:func:`row_hash`: fixed
field order, UTC timestamps with microseconds, JSON with sorted keys, so a
``jsonb`` round trip never looks like tampering; the form is versioned,
:data:`CANONICAL_FORMS`, so a column added later never changes the hash of a
row sealed before it), stores one 16-byte hash per
row and the row ids per table in a new :class:`~audit.models.AuditSeal`, and
chains it: ``hash = SHA-256(prev_hash || rows_digest || metadata)``. Nothing
is written on the audit rows themselves (the tables are append-only).

Which rows are "written since the previous seal":

- **PostgreSQL**: by transaction horizon. Migration 0002 gives each audit
  table a column ``xact_id bigint DEFAULT pg_current_xact_id()`` (not in the
  Django models; the database fills it). A seal takes ``h =
  pg_snapshot_xmin(pg_current_snapshot())``: every transaction below ``h``
  has finished, so a row with ``xact_id < h`` can no longer appear by a late
  commit. Seal *n* covers ``prev_h <= xact_id < h``: no row is skipped or
  sealed twice, whatever the order in which sequences handed out ids. The
  column is 64-bit (``xid8``, epoch included), so wraparound cannot confuse
  it, unlike the 32-bit system column ``xmin`` (which wraparound makes
  unusable for comparisons, and which no index can serve).
  Precisely, seal *n* takes the snapshot's ``xmax`` and in-progress list
  ``xip`` and covers ``xact_id`` in ``[xmax(n-1), xmax(n))`` plus
  ``xip(n-1)``, minus ``xip(n)``: a transaction open anywhere in the cluster
  (xids are cluster-wide) delays only its own rows, not everyone's, and
  each finished transaction's rows land in exactly one seal.
- **SQLite** (one writer at a time, ``AUTOINCREMENT`` ids): rows with
  ``prev_max_id < id <= max(id)``.

Sealing reads with plain ``SELECT`` s (no lock that an ``INSERT`` waits on)
and then inserts one seal row. Chain writers (seal and purge) serialize on a
PostgreSQL advisory lock and a file lock, never on the audit tables.

**Signatures**: every link is signed with Ed25519 when it is appended
(:mod:`audit.operations.signing`: its statement names the chain hash, the
ranges, the row count and the time), so the chain verifies with the public
key alone and nobody without the private key can forge a link. A seal is
also a Merkle tree head: ``row_hashes`` holds one 32-byte RFC 6962 leaf hash
per row (``SHA-256(0x00 || canonical row)``) and ``rows_digest`` is the
tree head over them (:mod:`audit.merkle`; ``details["tree"] = "rfc6962"``),
so an export pack proves one row with an inclusion proof without carrying
the others. Seals from before this (no ``tree``) keep their 16-byte hashes
and plain digest.

**The anchor**: after each new link the newest ``seq``/``hash`` is written to
``AUDIT_SEAL_FILE`` with an HMAC-SHA256 keyed by ``AUDIT_SEAL_KEY``
(:func:`write_anchor`), so a database superuser who rewrites rows *and*
recomputes the chain is still caught: the file names a hash the forged chain
no longer has, and he cannot sign a new file without the key.

**Purges** (:mod:`audit.operations.retention`) append a ``purge`` link listing the ids
they deleted, in the same transaction as the delete, so verification knows
which sealed rows are gone legitimately.

**Verification** (:func:`verify`, ``manage.py verify_audit``) recomputes every
link and every row and names each altered, deleted or out-of-band row by
table and id; rows after the last seal are counted as unsealed.
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
import fcntl
import hashlib
import hmac
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.db import connections, models, router, transaction
from django.utils import timezone

from audit import conf, merkle
from audit.models import AUDIT_MODELS, AUDIT_TABLES, AuditSeal, SealKind
from audit.operations import signing

#: Table order inside a seal (row_hashes are laid out table by table, then by id).
TABLES = AUDIT_TABLES
MODELS = AUDIT_MODELS
XACT_COLUMN = "xact_id"
ZERO_HASH = "0" * 64
ROW_HASH_BYTES = 16  # seals before Merkle trees
TREE = "rfc6962"
ADVISORY_LOCK_KEY = 0x6175646974  # "audit"
FETCH = 5000


# -- canonical form ----------------------------------------------------------------------------


def utc_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        if value.endswith("Z"):  # already canonical (PostgreSQL's to_char in _select)
            return value
        value = dt.datetime.fromisoformat(value)  # SQLite without converters
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds") + "Z"


def _json_value(value):
    return json.loads(value) if isinstance(value, (str, bytes)) else value


def _converter(f: models.Field) -> Callable | None:
    """How a column's database value becomes canonical (None: as it comes;
    text and integers are the same on both databases, an ``inet`` object
    becomes its text through the encoder's ``default=str``)."""
    if isinstance(f, models.DateTimeField):
        return utc_text
    if isinstance(f, models.JSONField):
        return _json_value
    if isinstance(f, models.BooleanField):
        return bool
    return None


#: The canonical form's versions: per table, the columns a row's hash covers, in this order.
#: A column added to an audit table joins the hash only in a new version, and each seal records
#: the version it used (``details["form"]``, inside the chain hash; seals without it used 1), so
#: rows sealed before an upgrade keep verifying. The event-state columns of ``system_events``
#: (``processed`` and the acknowledgement; the one UPDATE the append-only trigger allows) are in
#: no version from 2 on: processing or acknowledging an event never changes its hash.
CANONICAL_FORMS: dict[int, dict[str, tuple[str, ...]]] = {
    1: {
        "activity_logs": ("id", "user_id", "activity", "details", "timestamp", "ip_address", "request_id",
                          "user_agent", "method", "path", "status_code"),
        "system_events": ("id", "timestamp", "event_type", "entity_type", "entity_id", "event_data", "severity",
                          "processed", "request_id"),
        "audit_trail": ("id", "timestamp", "user_id", "action_type", "entity_type", "entity_id", "old_value",
                        "new_value", "changes", "ip_address", "status", "error_message", "change_reason",
                        "request_id"),
        "update_history": ("id", "timestamp", "table_name", "record_id", "field_name", "old_value", "new_value",
                           "user_id", "change_reason", "audit_id"),
    },
}
CANONICAL_FORMS[2] = {
    **CANONICAL_FORMS[1],
    "system_events": tuple(c for c in CANONICAL_FORMS[1]["system_events"] if c != "processed"),
}
# v3: audit_trail rows say where they came from (``source``: captured or manual)
CANONICAL_FORMS[3] = {
    **CANONICAL_FORMS[2],
    "audit_trail": (*CANONICAL_FORMS[2]["audit_trail"], "source"),
}
#: v4: audit_trail's user_display (the actor's display text captured at write time, issue 13.1)
CANONICAL_FORMS[4] = {
    **CANONICAL_FORMS[3],
    "audit_trail": (*CANONICAL_FORMS[3]["audit_trail"], "user_display"),
}
#: v5: audit_trail's displays (the related entities of a change as named when it was written, issue 13.1)
CANONICAL_FORMS[5] = {
    **CANONICAL_FORMS[4],
    "audit_trail": (*CANONICAL_FORMS[4]["audit_trail"], "displays"),
}
CURRENT_FORM = max(CANONICAL_FORMS)
#: Columns whose value may change once after sealing (v1 hashed ``processed`` as it was then).
EVENT_STATE = {"system_events": {"processed": False}}


@dataclass(frozen=True)
class TableSpec:
    """How rows of a table are read (every column of the model, in declaration order, id first)
    and which of them each canonical form hashes (indexes into that row)."""

    table: str
    columns: tuple[str, ...]
    converters: tuple[Callable | None, ...]
    convert: tuple[tuple[int, Callable], ...]  # (index, converter) of the columns that need one
    forms: dict[int, tuple[int, ...]]


def spec(table: str) -> TableSpec:
    fields = MODELS[table]._meta.concrete_fields
    columns = tuple(f.column for f in fields)
    converters = tuple(_converter(f) for f in fields)
    forms = {}
    for version, tables in CANONICAL_FORMS.items():
        missing = [c for c in tables[table] if c not in columns]
        if missing:
            raise RuntimeError(f"canonical form {version} of {table} names columns the model lacks: {missing}")
        forms[version] = tuple(columns.index(c) for c in tables[table])
    return TableSpec(table, columns, converters, tuple((i, c) for i, c in enumerate(converters) if c is not None),
                     forms)


SPECS = {t: spec(t) for t in TABLES}
#: one encoder (json.dumps with options builds a new one per call)
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def canonical_values(table: str, row) -> list:
    """``[table, *every column]`` of a row (a tuple in :data:`SPECS` column order), each value
    canonical: UTC timestamps with microseconds, parsed JSON, booleans."""
    s = SPECS[table]
    values = [table, *row[:len(s.columns)]]
    for i, conv in s.convert:
        v = values[i + 1]
        if v is not None:
            values[i + 1] = conv(v)
    return values


def _form_values(table: str, row, form: int) -> list:
    values = canonical_values(table, row)
    return [table, *(values[i + 1] for i in SPECS[table].forms[form])]


def canonical_record(table: str, row, form: int = CURRENT_FORM) -> dict:
    """One form's columns of a row as JSON-ready values (``{column: value}``): what an export
    pack carries so that a verifier rebuilds :func:`canonical_row` from it byte for byte."""
    values = json.loads(_ENCODER.encode(_form_values(table, row, form)))
    return dict(zip(CANONICAL_FORMS[form][table], values[1:], strict=True))


def canonical_row(table: str, row, form: int = CURRENT_FORM) -> str:
    """A row (a tuple in :data:`SPECS` column order) as the canonical JSON of one form's
    columns: ``[table, id, field, ...]``, JSON values with sorted keys."""
    return _ENCODER.encode(_form_values(table, row, form))


def row_hash(table: str, row, form: int = CURRENT_FORM) -> bytes:
    """The 16-byte hash of one row (a tuple in :data:`SPECS` column order) in a canonical form."""
    return hashlib.sha256(_ENCODER.encode(_form_values(table, row, form)).encode()).digest()[:ROW_HASH_BYTES]


def row_hashes_for(table: str, row, form: int, hasher: Callable = row_hash) -> list[bytes]:
    """The hashes a sealed row may rightly have: its hash now and, for a form that hashed an
    event-state column, its hash before that column's one allowed change (``hasher``:
    :func:`row_hash` or :func:`row_leaf`)."""
    hashes = [hasher(table, row, form)]
    s = SPECS[table]
    for column, before in EVENT_STATE.get(table, {}).items():
        i = s.columns.index(column)
        if column in CANONICAL_FORMS[form][table] and row[i] != before:
            hashes.append(hasher(table, (*row[:i], before, *row[i + 1:]), form))
    return hashes


def seal_form(link: AuditSeal) -> int:
    return (link.details or {}).get("form", 1)


def row_leaf(table: str, row, form: int = CURRENT_FORM) -> bytes:
    """The RFC 6962 leaf hash of one row in a canonical form: ``SHA-256(0x00 || canonical row)``."""
    return merkle.leaf_hash(_ENCODER.encode(_form_values(table, row, form)).encode())


def is_tree(link: AuditSeal) -> bool:
    return (link.details or {}).get("tree") == TREE


def leaf_size(link: AuditSeal) -> int:
    """Bytes per row in the link's ``row_hashes``."""
    return merkle.HASH_BYTES if is_tree(link) else ROW_HASH_BYTES


def canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def link_metadata(link: AuditSeal) -> dict:
    return {"seq": link.seq, "kind": link.kind, "created_at": utc_text(link.created_at), "horizon": link.horizon,
            "ranges": link.ranges, "row_count": link.row_count, "details": link.details}


def link_hash(link: AuditSeal) -> str:
    payload = link.prev_hash + link.rows_digest + canonical_json(link_metadata(link))
    return hashlib.sha256(payload.encode()).hexdigest()


def rows_digest(link: AuditSeal) -> str:
    """A purge: the hash of its ranges; a Merkle seal: its tree head; an older seal: the hash of its row hashes."""
    if link.kind == SealKind.PURGE:
        return hashlib.sha256(canonical_json(link.ranges).encode()).hexdigest()
    if is_tree(link):
        return merkle.tree_head_of(bytes(link.row_hashes)).hex()
    return hashlib.sha256(bytes(link.row_hashes)).hexdigest()


def statement(link: AuditSeal) -> bytes:
    """What the link's signature covers (see :mod:`audit.operations.signing`)."""
    return signing.link_statement(seq=link.seq, kind=link.kind, hash=link.hash, prev_hash=link.prev_hash,
                                  rows_digest=link.rows_digest, created_at=utc_text(link.created_at),
                                  ranges=link.ranges, row_count=link.row_count, key_id=link.key_id)


def to_ranges(ids: list[int]) -> list[list[int]]:
    """Sorted ids as ``[[first, last], ...]`` runs."""
    ranges: list[list[int]] = []
    for i in ids:
        if ranges and i == ranges[-1][1] + 1:
            ranges[-1][1] = i
        else:
            ranges.append([i, i])
    return ranges


# -- the chain lock and the anchor file ----------------------------------------------------------


@contextlib.contextmanager
def chain_lock(using: str = "default"):
    """Serializes chain writers (seal, purge) and anchor readers: a file lock
    beside the seal file and, on PostgreSQL, a session advisory lock. No
    business write ever takes either."""
    path = conf.seal_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = connections[using]
    with open(path.with_name(path.name + ".lock"), "a+") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
                try:
                    yield
                finally:
                    with connection.cursor() as cursor:
                        cursor.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK_KEY])
            else:
                yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _anchor_mac(payload: dict) -> str:
    return hmac.new(conf.seal_key(), canonical_json(payload).encode(), hashlib.sha256).hexdigest()


def write_anchor(link: AuditSeal) -> Path:
    """Write the newest link's seq and hash with an HMAC and an Ed25519
    signature to the seal file (temporary file, fsync, rename, fsync of the
    directory)."""
    path = conf.seal_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"seq": link.seq, "hash": link.hash, "kind": link.kind, "created_at": utc_text(link.created_at)}
    active = signing.signer()
    document = {**payload, "hmac": _anchor_mac(payload), "key_id": active.key_id,
                "signature": active.sign(signing.anchor_statement(payload, active.key_id))}
    partial = path.with_name(path.name + ".tmp")
    with open(partial, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(document, indent=2, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(partial, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return path


def read_anchor(*, public_keys: list[signing.PublicKey] | None = None,
                check_hmac: bool = True) -> tuple[dict | None, str | None]:
    """(payload, problem): the seal file's content if its HMAC is right (when
    ``check_hmac``) and, given ``public_keys``, its signature by one of them."""
    path = conf.seal_file()
    if not path.exists():
        return None, f"seal file {path} is missing"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        payload = {k: document[k] for k in ("seq", "hash", "kind", "created_at")}
        mac = document["hmac"]
    except (ValueError, KeyError, TypeError) as exc:
        return None, f"seal file {path} is unreadable: {exc}"
    if check_hmac and not hmac.compare_digest(str(mac), _anchor_mac(payload)):
        return None, f"seal file {path}: HMAC mismatch (the file was altered or signed with another key)"
    if public_keys is not None:
        key = {k.key_id: k for k in public_keys}.get(document.get("key_id"))
        signature = document.get("signature")
        if key is None or not isinstance(signature, str) or not key.verifies(
                signing.anchor_statement(payload, key.key_id), signature):
            return None, (f"seal file {path}: its signature does not verify with the trusted public keys "
                          "(the file was altered or signed with another key)")
    return payload, None


# -- appending links -----------------------------------------------------------------------------


def _tip(using: str) -> AuditSeal | None:
    return AuditSeal.objects.using(using).order_by("-seq").first()


def append_link(*, kind: str, ranges: dict, row_hashes: bytes = b"", horizon: dict | None = None,
                details: dict | None = None, using: str = "default") -> AuditSeal:
    """Insert the next link, signed. Call under :func:`chain_lock`, inside the
    transaction whose effect it records (a purge batch) or on its own."""
    active = signing.signer()
    with transaction.atomic(using=using):
        tip = _tip(using)
        link = AuditSeal(
            seq=(tip.seq + 1) if tip else 1,
            kind=kind,
            created_at=timezone.now(),
            horizon=horizon or {},
            ranges={t: r for t, r in ranges.items() if r},
            row_count=sum(hi - lo + 1 for r in ranges.values() for lo, hi in r),
            row_hashes=row_hashes,
            prev_hash=tip.hash if tip else ZERO_HASH,
            details=details or {},
        )
        link.rows_digest = rows_digest(link)
        link.hash = link_hash(link)
        link.key_id = active.key_id
        link.signature = active.sign(statement(link))
        signing.register(active, first_seq=link.seq, using=using)
        link.save(using=using, force_insert=True)
    return link


def _pg_snapshot(connection) -> dict:
    """The current snapshot: ``xmax`` (first unassigned transaction id) and
    ``xip`` (transactions still in progress), 64-bit."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_snapshot_xmax(s)::text::bigint, "
                       "ARRAY(SELECT x::text::bigint FROM pg_snapshot_xip(s) AS x ORDER BY 1) "
                       "FROM (SELECT pg_current_snapshot() AS s) AS q")
        xmax, xip = cursor.fetchone()
    return {"xmax": int(xmax), "xip": sorted(int(x) for x in xip)}


def _last_seal(using: str) -> AuditSeal | None:
    return AuditSeal.objects.using(using).filter(kind=SealKind.SEAL).order_by("-seq").first()


def _select(table: str, connection, where: str = "", extra: str = "") -> str:
    """SELECT of a table's columns in canonical order. On PostgreSQL the
    timestamps come as canonical text (formatting in the server is cheaper
    than parsing and reformatting in Python: verify's rows per second)."""
    qn = connection.ops.quote_name
    dates = {f.column for f in MODELS[table]._meta.concrete_fields if isinstance(f, models.DateTimeField)}
    if connection.vendor == "postgresql":
        columns = ", ".join(
            f"to_char({qn(c)} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')" if c in dates else qn(c)
            for c in SPECS[table].columns)
    else:
        columns = ", ".join(qn(c) for c in SPECS[table].columns)
    return f"SELECT {columns}{extra} FROM {qn(table)} {where} ORDER BY {qn('id')}"


@contextlib.contextmanager
def _rows(connection, sql: str, params) -> Iterator[Iterator[tuple]]:
    """Stream a query's rows: a server-side cursor in a read-only
    transaction on PostgreSQL (no lock a writer waits on), a plain cursor
    elsewhere (SQLite reads a WAL snapshot)."""
    if connection.vendor == "postgresql":
        with transaction.atomic(using=connection.alias):
            with connection.chunked_cursor() as cursor:
                cursor.itersize = FETCH
                cursor.execute(sql, params)
                yield iter(cursor)
    else:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)

            def gen():
                while batch := cursor.fetchmany(FETCH):
                    yield from batch

            yield gen()


def seal(*, using: str | None = None, write_file: bool = True) -> AuditSeal:
    """Seal every audit row written since the last seal (a seal is appended
    even when there is none) and rewrite the anchor file."""
    using = using or router.db_for_write(AuditSeal)
    connection = connections[using]
    postgres = connection.vendor == "postgresql"
    form = CURRENT_FORM
    with chain_lock(using):
        last = _last_seal(using)
        ranges: dict[str, list] = {}
        hashes = bytearray()
        if postgres:
            # Rows of transactions that finished before this snapshot and after
            # the previous one's: [prev xmax, xmax) plus the previous snapshot's
            # in-progress ones, minus those still in progress now.
            horizon = _pg_snapshot(connection)
            previous = (last.horizon if last else None) or {"xmax": 0, "xip": []}
            low = previous["xmax"]
            high = max(horizon["xmax"], low)
            horizon["xmax"] = high
            where = (f"WHERE (({XACT_COLUMN} >= %s AND {XACT_COLUMN} < %s) OR {XACT_COLUMN} = ANY(%s)) "
                     f"AND NOT ({XACT_COLUMN} = ANY(%s))")
            params = [low, high, previous["xip"], horizon["xip"]]
        else:
            horizon = {}
        for table in TABLES:
            if not postgres:
                low = ((last.horizon.get(table) if last else None) or [0, 0])[1]
                with connection.cursor() as cursor:
                    cursor.execute(f"SELECT MAX(id) FROM {connection.ops.quote_name(table)}")
                    high = max(cursor.fetchone()[0] or 0, low)
                where, params = "WHERE id > %s AND id <= %s", [low, high]
                horizon[table] = [low, high]
            ids = []
            with _rows(connection, _select(table, connection, where), params) as rows:
                for row in rows:
                    ids.append(row[0])
                    hashes += row_leaf(table, row, form)
            ranges[table] = to_ranges(ids)
        link = append_link(kind=SealKind.SEAL, ranges=ranges, row_hashes=bytes(hashes), horizon=horizon,
                           details={"window": "xact_id" if postgres else "id", "form": form, "tree": TREE},
                           using=using)
        if write_file:
            write_anchor(link)
    return link


# -- verification --------------------------------------------------------------------------------


@dataclass
class Finding:
    table: str
    row_id: int | None
    problem: str  # altered, deleted, inserted, seal, anchor

    def __str__(self):
        where = f"{self.table} id {self.row_id}" if self.row_id is not None else self.table
        return f"{where}: {self.problem}"


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    rows_checked: int = 0
    unsealed: dict[str, int] = field(default_factory=dict)
    purged_missing: int = 0
    links: int = 0
    anchor: dict | None = None
    #: no seal in the database and no seal file: nothing to check yet (not tampering)
    never_sealed: bool = False
    signed_links: int = 0
    unsigned_links: int = 0  # links from before signing began
    keys: list[str] = field(default_factory=list)  # key ids that signed, in chain order

    @property
    def ok(self) -> bool:
        return not self.findings


class Intervals:
    """Sorted disjoint ``[lo, hi]`` runs with a payload, searched by bisect."""

    def __init__(self, runs: list[tuple]):
        self.runs = sorted(runs, key=lambda r: r[0])
        self.starts = [r[0] for r in self.runs]

    def find(self, i: int):
        k = bisect.bisect_right(self.starts, i) - 1
        if k >= 0 and self.runs[k][1] >= i:
            return self.runs[k]
        return None

    def subtract(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """Parts of [lo, hi] not covered by the runs."""
        out, cur = [], lo
        k = max(bisect.bisect_right(self.starts, lo) - 1, 0)
        while cur <= hi and k < len(self.runs):
            a, b = self.runs[k][0], self.runs[k][1]
            if b < cur:
                k += 1
                continue
            if a > hi:
                break
            if a > cur:
                out.append((cur, a - 1))
            cur = max(cur, b + 1)
            k += 1
        if cur <= hi:
            out.append((cur, hi))
        return out


def check_signatures(links: list[AuditSeal], keys: list[signing.PublicKey], report: Report, find,
                     *, require: bool = False, altered: frozenset = frozenset()) -> None:
    """Each link signed by a trusted key, keys taking over in order. Links
    before the first signed one predate signing (counted); an unsigned link
    after it, or (``require``) an unsigned newest link, is a finding. A link
    in ``altered`` (its content does not hash to its hash: already a finding)
    is not checked again."""
    trusted = {k.key_id: k for k in keys}
    first_signed, current, retired = None, None, set()
    for link in links:
        label = f"{link.kind} #{link.seq}"
        if not link.signature:
            if first_signed is not None:
                find("audit_seals", link.seq, f"{label}: not signed, although the chain is signed from "
                                              f"#{first_signed} on (link forged or signature removed)")
            else:
                report.unsigned_links += 1
            continue
        if first_signed is None:
            first_signed = link.seq
        if link.seq in altered:
            continue
        key = trusted.get(link.key_id)
        if key is None:
            find("audit_seals", link.seq, f"{label}: signed by key {link.key_id[:12]}, which is not a trusted "
                                          "public key")
            continue
        if not key.verifies(statement(link), link.signature):
            find("audit_seals", link.seq, f"{label}: the signature does not verify (link forged or altered)")
            continue
        if link.key_id in retired:
            find("audit_seals", link.seq, f"{label}: signed with key {link.key_id[:12]} after it was rotated out")
        if current is not None and current != link.key_id:
            retired.add(current)
        if current != link.key_id:
            report.keys.append(link.key_id)
        current = link.key_id
        report.signed_links += 1
    if require and links and not links[-1].signature and first_signed is None:
        find("audit_seals", links[-1].seq, f"{links[-1].kind} #{links[-1].seq}: the newest link is not signed")


def verify(*, using: str | None = None, limit: int = 1000,
           progress: Callable[[int], None] | None = None,
           public_keys: list[signing.PublicKey] | None = None, check_hmac: bool = True) -> Report:
    """Check the anchor, the chain and every sealed row; see the module doc.

    Signatures are checked with ``public_keys`` (then the seal file's signature
    too, and every chain must be signed); without them, with the keys listed in
    the database. ``check_hmac=False`` skips the seal file's HMAC (a verifier
    without the secret key)."""
    using = using or router.db_for_write(AuditSeal)
    connection = connections[using]
    postgres = connection.vendor == "postgresql"
    report = Report()

    def find(table, row_id, problem):
        report.findings.append(Finding(table, row_id, problem))

    with chain_lock(using):  # a consistent (file, chain tip) pair
        file_exists = conf.seal_file().exists()
        anchor, problem = read_anchor(public_keys=public_keys, check_hmac=check_hmac)
        tip = _tip(using)
    links = list(AuditSeal.objects.using(using).filter(seq__lte=tip.seq if tip else 0).order_by("seq"))
    report.links = len(links)
    report.anchor = anchor

    # the chain
    previous = ZERO_HASH
    altered = set()
    for position, link in enumerate(links, start=1):
        label = f"{link.kind} #{link.seq}"
        if link.seq != position:
            find("audit_seals", link.seq, f"{label}: chain gap (expected #{position}; a link was deleted)")
        if link.prev_hash != previous:
            find("audit_seals", link.seq, f"{label}: prev_hash does not match the previous link's hash")
        if rows_digest(link) != link.rows_digest:
            find("audit_seals", link.seq, f"{label}: row hashes do not match the stored digest (seal altered)")
        if link_hash(link) != link.hash:
            find("audit_seals", link.seq, f"{label}: hash does not match its content (seal altered)")
            altered.add(link.seq)
        previous = link.hash
    check_signatures(links, signing.registered_keys(using) if public_keys is None else public_keys, report, find,
                     require=public_keys is not None, altered=frozenset(altered))

    # the anchor outside the database
    if not links and not file_exists:
        report.never_sealed = True  # a file without seals, or seals without the file, is tampering
    elif problem:
        find("seal file", None, problem)
    elif links:
        by_seq = {link.seq: link for link in links}
        named = by_seq.get(anchor["seq"])
        if named is None or named.hash != anchor["hash"]:
            find("seal file", None, f"the file's seal #{anchor['seq']} ({anchor['hash'][:12]}) is not in the "
                                    "database chain: the chain was rewritten")
        elif anchor["seq"] != links[-1].seq:
            find("seal file", None, f"the file names seal #{anchor['seq']} but the chain goes on to "
                                    f"#{links[-1].seq}: the file was rolled back or links were added without the key")
    elif anchor:
        find("seal file", None, f"the file names seal #{anchor['seq']} but the database has no seal")

    seals = [link for link in links if link.kind == SealKind.SEAL]
    purges = [link for link in links if link.kind == SealKind.PURGE]
    last = seals[-1] if seals else None
    for table in TABLES:
        runs, purged_runs = [], []
        for link in seals:
            offset = 0
            for t in TABLES:
                for lo, hi in link.ranges.get(t, []):
                    if t == table:
                        runs.append((lo, hi, link, offset))
                    offset += hi - lo + 1
        for link in purges:
            purged_runs.extend((lo, hi) for lo, hi in link.ranges.get(table, []))
        sealed, purged = Intervals(runs), Intervals(purged_runs)
        if postgres:
            frontier = last.horizon.get("xmax", 0) if last else 0
            pending = set(last.horizon.get("xip", [])) if last else set()
        else:
            frontier = (last.horizon.get(table) or [0, 0])[1] if last else 0
        unsealed = 0
        missing: list[tuple[int, int, AuditSeal]] = []
        k = 0  # next sealed run whose ids are still expected
        expect = sealed.runs[0][0] if runs else None
        extra = f", {XACT_COLUMN}" if postgres else ""
        with _rows(connection, _select(table, connection, extra=extra), []) as rows:
            for row in rows:
                row_id = row[0]
                report.rows_checked += 1
                if progress and report.rows_checked % 10_000 == 0:
                    progress(10_000)
                # sealed ids below this one that never showed up
                while k < len(sealed.runs) and sealed.runs[k][1] < row_id:
                    lo, hi, link, _ = sealed.runs[k]
                    if expect <= hi:
                        missing.append((max(expect, lo), hi, link))
                    k += 1
                    expect = sealed.runs[k][0] if k < len(sealed.runs) else None
                if k < len(sealed.runs) and sealed.runs[k][0] <= row_id:
                    lo, hi, link, offset = sealed.runs[k]
                    if expect < row_id:
                        missing.append((max(expect, lo), row_id - 1, link))
                    expect = row_id + 1
                    size = leaf_size(link)
                    start = (offset + row_id - lo) * size
                    stored = bytes(link.row_hashes[start:start + size])
                    hasher = row_leaf if size == merkle.HASH_BYTES else row_hash
                    if stored not in row_hashes_for(table, row, seal_form(link), hasher):
                        find(table, row_id, f"altered (differs from seal #{link.seq})")
                    continue
                # not in any seal
                if purged.find(row_id):
                    find(table, row_id, "inserted out of band (its id was purged earlier)")
                elif postgres and (row[-1] is None or row[-1] < frontier) and row[-1] not in pending:
                    find(table, row_id, f"inserted out of band (its transaction is inside sealed range "
                                        f"< {frontier} but no seal holds it)")
                elif not postgres and row_id <= frontier:
                    find(table, row_id, f"inserted out of band (id inside sealed range <= {frontier} "
                                        "but no seal holds it)")
                else:
                    unsealed += 1
        while k < len(sealed.runs):
            lo, hi, link, _ = sealed.runs[k]
            if expect is not None and expect <= hi:
                missing.append((max(expect, lo), hi, link))
            k += 1
            expect = sealed.runs[k][0] if k < len(sealed.runs) else None
        # a purge that ran meanwhile explains rows gone since the chain was read
        later = AuditSeal.objects.using(using).filter(kind=SealKind.PURGE, seq__gt=tip.seq if tip else 0)
        for link in later:
            purged_runs.extend((lo, hi) for lo, hi in link.ranges.get(table, []))
        purged = Intervals(purged_runs)
        for lo, hi, link in missing:
            gone = purged.subtract(lo, hi)
            report.purged_missing += (hi - lo + 1) - sum(b - a + 1 for a, b in gone)
            for a, b in gone:
                for row_id in range(a, b + 1):
                    if len(report.findings) >= limit:
                        break
                    find(table, row_id, f"deleted (sealed in #{link.seq}, not purged)")
        report.unsealed[table] = unsealed
    return report

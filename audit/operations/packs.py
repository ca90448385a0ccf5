"""Export packs: audit rows an outsider verifies offline with the public key alone.

:func:`write_pack` writes one zip archive (every member stored uncompressed):

- ``rows/audit_trail.jsonl`` and ``rows/update_history.jsonl``: one line per
  row with its canonical columns (``record``), the seal that holds it, its
  leaf index in that seal and its RFC 6962 inclusion proof; ``.csv`` twins of
  the same rows for people (formula-like text prefixed with ``'``);
- ``seals.json``: every chain link from the first seal holding a pack row to
  the last, each with its content (so its chain hash can be recomputed) and
  its Ed25519 signature, plus the canonical forms' column lists;
- ``keys/<key id>.pem``: the public keys that signed them (for reference: a
  verifier trusts only the keys it is given);
- ``dossier/...`` for a pack of one entity: its current record, and for a
  maintenance request its comments and its attachments' SHA-256, for an
  inventory item its stock movements (their audit rows are in ``rows/``);
- ``manifest.json``: the SHA-256 and size of every other member, the filters,
  counts and the rows left out, signed in ``manifest.sig``.

Only sealed rows can be proven: rows written after the last seal (sealed
within a seal interval) and rows of seals older than Merkle seals are left
out and counted in the manifest. :mod:`audit.verify_pack` checks a pack.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import connections, router
from django.db.models import QuerySet
from django.utils import timezone

from audit import merkle
from audit.exports import neutralise
from audit.models import AuditSeal, AuditSigningKey, AuditTrail, SealKind, UpdateHistory
from audit.operations import integrity, signing

PACK_FORMAT = "marine-audit-pack/1"
PACK_TABLES = ("audit_trail", "update_history")
MAX_ROWS = 100_000  # a pack is evidence for a case, built in memory: larger selections are refused
IN_BATCH = 1000


class PackTooLarge(ValueError):
    pass


@dataclass
class PackSummary:
    rows: dict[str, int] = field(default_factory=dict)
    seals: list[int] = field(default_factory=list)
    left_out: dict[str, int] = field(default_factory=dict)  # reason -> rows
    mismatched: list[tuple[str, int]] = field(default_factory=list)  # rows that differ from their seal now
    key_id: str = ""
    members: int = 0

    @property
    def total(self) -> int:
        return sum(self.rows.values())


@dataclass(frozen=True)
class Placement:
    seq: int
    index: int


# -- where each row sits in the chain -------------------------------------------------------------


class _Chain:
    """The seals' ranges (without their row hashes), searchable by table and id."""

    def __init__(self, using: str):
        self.using = using
        self.links = {s.seq: s for s in AuditSeal.objects.using(using).filter(kind=SealKind.SEAL)
                      .defer("row_hashes").order_by("seq")}
        self.index: dict[str, integrity.Intervals] = {}
        for table in integrity.TABLES:
            runs = []
            for link in self.links.values():
                offset = 0
                for t in integrity.TABLES:
                    for lo, hi in link.ranges.get(t, []):
                        if t == table:
                            runs.append((lo, hi, link.seq, offset))
                        offset += hi - lo + 1
            self.index[table] = integrity.Intervals(runs)

    def place(self, table: str, row_id: int) -> tuple[Placement | None, str | None]:
        run = self.index[table].find(row_id)
        if run is None:
            return None, "not sealed yet"
        lo, _, seq, offset = run
        if not integrity.is_tree(self.links[seq]):
            return None, "sealed before seals were Merkle trees"
        return Placement(seq, offset + row_id - lo), None


def _chunks(ids: list[int], size: int = IN_BATCH) -> Iterable[list[int]]:
    for i in range(0, len(ids), size):
        yield ids[i:i + size]


def _read_rows(table: str, ids: list[int], using: str) -> Iterable[tuple]:
    """The rows in canonical column order (as sealing reads them), by id."""
    connection = connections[using]
    for batch in _chunks(sorted(ids)):
        marks = ", ".join(["%s"] * len(batch))
        sql = integrity._select(table, connection, f"WHERE id IN ({marks})")
        with connection.cursor() as cursor:
            cursor.execute(sql, batch)
            yield from cursor.fetchall()


# -- members ---------------------------------------------------------------------------------------


def _jsonl(entries: Iterable[dict]) -> bytes:
    return "".join(json.dumps(e, ensure_ascii=False, sort_keys=True) + "\n" for e in entries).encode()


def _csv(header: list[str], rows: Iterable[list]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([neutralise(json.dumps(v, ensure_ascii=False, sort_keys=True)
                                    if isinstance(v, (dict, list)) else v) for v in row])
    return buffer.getvalue().encode()


def _link_entry(link: AuditSeal) -> dict:
    return {"seq": link.seq, "kind": link.kind, "created_at": integrity.utc_text(link.created_at),
            "horizon": link.horizon, "ranges": link.ranges, "row_count": link.row_count, "details": link.details,
            "prev_hash": link.prev_hash, "rows_digest": link.rows_digest, "hash": link.hash,
            "key_id": link.key_id, "signature": link.signature}


def _json_safe(value):
    return json.loads(json.dumps(value, default=str))


def _instance_record(instance) -> dict:
    out = {}
    for f in instance._meta.concrete_fields:
        if f.name in ("password",):
            continue
        value = f.value_from_object(instance)
        out[f.attname] = value.isoformat() if hasattr(value, "isoformat") else value
    return _json_safe(out)


def _file_sha256(file_field) -> tuple[str | None, int | None]:
    try:
        with file_field.open("rb") as fh:
            digest = hashlib.sha256()
            size = 0
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
        return digest.hexdigest(), size
    except (OSError, ValueError):
        return None, None


def dossier(entity_type: str, entity_id: str) -> tuple[dict[str, bytes], dict[str, list[str]]]:
    """The dossier members of one entity and the (entity_type -> ids) of its parts
    whose audit rows belong in the pack too."""
    from audit.capture import registry

    members: dict[str, bytes] = {}
    parts: dict[str, list[str]] = {}
    config = registry.config_for_entity_type(entity_type) if entity_type else None
    candidates = [config] if config else [c for c in registry.tracked_models() if c.code_field != "pk"]
    instance = None
    for candidate in candidates:
        if candidate is None or candidate.code_field == "pk":
            continue
        instance = candidate.model._default_manager.filter(**{candidate.code_field: entity_id}).first()
        if instance is not None:
            entity_type = candidate.entity_type
            break
    if instance is None:
        return members, parts
    members["dossier/entity.json"] = json.dumps(
        {"entity_type": entity_type, "entity_id": entity_id, "record": _instance_record(instance)},
        ensure_ascii=False, indent=2, sort_keys=True).encode()
    if entity_type == "maintenance_request":
        comments = list(instance.comments.order_by("created_at", "id"))
        members["dossier/comments.jsonl"] = _jsonl(
            {"id": c.pk, "author": c.author.user_id, "body": c.body, "created_at": c.created_at.isoformat()}
            for c in comments)
        attachments = []
        for a in instance.attachments.order_by("created_at", "id"):
            digest, size = _file_sha256(a.file)
            attachments.append({"id": a.pk, "name": a.original_name, "content_type": a.content_type,
                                "size": a.size, "uploaded_by": a.uploaded_by.user_id,
                                "created_at": a.created_at.isoformat(), "sha256": digest,
                                "file_missing": digest is None, "size_matches": size == a.size})
        members["dossier/attachments.jsonl"] = _jsonl(attachments)
        parts["comment"] = [str(c.pk) for c in comments]
        parts["attachment"] = [str(a["id"]) for a in attachments]
    elif entity_type == "inventory_item":
        moves = list(instance.adjustments.order_by("created_at", "id"))
        members["dossier/stock_movements.jsonl"] = _jsonl(
            {"id": m.pk, "quantity_change": m.quantity_change, "resulting_quantity": m.resulting_quantity,
             "reason": m.reason, "adjusted_by": m.adjusted_by.user_id, "created_at": m.created_at.isoformat()}
            for m in moves)
        parts["stock_adjustment"] = [str(m.pk) for m in moves]
    return members, parts


# -- the pack --------------------------------------------------------------------------------------


README = """Audit export pack ({format})

Verify it offline with the public key of the seals (GET /api/realtime/seals/public-key,
or docs/operations.md) and Python with the 'cryptography' package:

    python -m audit.verify_pack {name} --public-key KEY.pem

The verifier is audit/verify_pack.py of the Marine Service Center (one file, standard
library and cryptography only). It checks manifest.sig, the SHA-256 of every member,
the chain and signatures of seals.json, and each row's inclusion proof. Exit status 0:
all verified; 1: something failed (each failing row named); 2: usage error.

Keys in keys/ are the pack's own copy, for reference: trust the key you obtained
independently.
"""


@dataclass(frozen=True)
class Selection:
    """What a pack holds: audit_trail rows (``trail``), their time window (for
    the rows of an entity's parts), the filters as stated, and the entity."""

    trail: QuerySet
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    filters: dict = field(default_factory=dict)
    entity: tuple[str, str] | None = None  # (entity_type or "", entity_id)

    def parts(self, entity_type: str, ids: list[str]) -> QuerySet:
        qs = AuditTrail.objects.filter(entity_type=entity_type, entity_id__in=ids)
        if self.start is not None:
            qs = qs.filter(timestamp__gte=self.start)
        if self.end is not None:
            qs = qs.filter(timestamp__lt=self.end)
        return qs


def write_pack(target, *, selection: Selection, created_by: str, using: str | None = None,
               name: str = "PACK.zip") -> PackSummary:
    """Write the pack of the selected rows (with their field history and the
    entity's dossier) to ``target`` (a path or a binary file object). Raises
    :class:`PackTooLarge` above :data:`MAX_ROWS` rows and
    :class:`~audit.operations.signing.SigningKeyMissing` without a key."""
    using = using or router.db_for_read(AuditSeal)
    active = signing.signer()
    summary = PackSummary(key_id=active.key_id)
    members: dict[str, bytes] = {}
    entity = selection.entity

    trail_ids = list(selection.trail.values_list("id", flat=True)[:MAX_ROWS + 1])
    if entity is not None:
        extra_members, parts = dossier(*entity)
        members.update(extra_members)
        for part_type, part_ids in parts.items():
            for batch in _chunks(part_ids):
                trail_ids.extend(selection.parts(part_type, batch).values_list("id", flat=True))
    trail_ids = sorted(set(trail_ids))
    if len(trail_ids) > MAX_ROWS:
        raise PackTooLarge(f"More than {MAX_ROWS} audit_trail rows match: narrow the filters "
                           "(hours, from/to, entity_id).")
    history_ids: list[int] = []
    for batch in _chunks(trail_ids):
        history_ids.extend(UpdateHistory.objects.using(using).filter(audit_id__in=batch).values_list("id", flat=True))

    chain = _Chain(using)
    wanted = {"audit_trail": trail_ids, "update_history": sorted(history_ids)}
    placed: dict[str, dict[int, Placement]] = {}
    for table, ids in wanted.items():
        placed[table] = {}
        for row_id in ids:
            where, reason = chain.place(table, row_id)
            if where is None:
                summary.left_out[reason] = summary.left_out.get(reason, 0) + 1
            else:
                placed[table][row_id] = where

    seqs = sorted({p.seq for rows in placed.values() for p in rows.values()})
    trees: dict[int, merkle.Tree] = {}
    for seq in seqs:
        link = AuditSeal.objects.using(using).only("row_hashes").get(seq=seq)
        trees[seq] = merkle.Tree(merkle.split_leaves(bytes(link.row_hashes)))

    forms_used: set[int] = set()
    for table in PACK_TABLES:
        entries, csv_rows = [], []
        for row in _read_rows(table, list(placed[table]), using):
            where = placed[table][row[0]]
            link = chain.links[where.seq]
            form = integrity.seal_form(link)
            forms_used.add(form)
            tree = trees[where.seq]
            if integrity.row_leaf(table, row, form) != tree.levels[0][where.index]:
                summary.mismatched.append((table, row[0]))
            record = integrity.canonical_record(table, row, form)
            entries.append({"table": table, "id": row[0], "form": form, "seal": where.seq,
                            "leaf_index": where.index, "proof": [p.hex() for p in tree.proof(where.index)],
                            "record": record})
            csv_rows.append([*record.values(), where.seq])
        columns = list(integrity.CANONICAL_FORMS[max(forms_used, default=integrity.CURRENT_FORM)][table])
        members[f"rows/{table}.jsonl"] = _jsonl(entries)
        members[f"rows/{table}.csv"] = _csv([*columns, "seal"], csv_rows)
        summary.rows[table] = len(entries)

    links = []
    if seqs:
        links = list(AuditSeal.objects.using(using).filter(seq__gte=seqs[0], seq__lte=seqs[-1])
                     .defer("row_hashes").order_by("seq"))
    summary.seals = seqs
    members["seals.json"] = json.dumps({
        "tables": list(integrity.TABLES),
        "forms": {str(v): {t: list(c) for t, c in cols.items()} for v, cols in integrity.CANONICAL_FORMS.items()},
        "links": [_link_entry(link) for link in links],
    }, ensure_ascii=False, indent=1, sort_keys=True).encode()

    key_ids = {link.key_id for link in links if link.key_id} | {active.key_id}
    listed = {k.key_id: k.public_key for k in AuditSigningKey.objects.using(using).filter(key_id__in=key_ids)}
    listed.setdefault(active.key_id, active.public_pem)
    for kid, pem in sorted(listed.items()):
        members[f"keys/{kid}.pem"] = pem.encode()
    members["README.txt"] = README.format(format=PACK_FORMAT, name=name).encode()

    manifest = {
        "format": PACK_FORMAT,
        "created_at": integrity.utc_text(timezone.now()),
        "created_by": created_by,
        "filters": selection.filters,
        "entity": {"entity_type": entity[0] or None, "entity_id": entity[1]} if entity else None,
        "rows": summary.rows,
        "seals": {"first": seqs[0] if seqs else None, "last": seqs[-1] if seqs else None, "count": len(seqs)},
        "left_out": summary.left_out,
        "key_id": active.key_id,
        "members": {n: {"sha256": hashlib.sha256(b).hexdigest(), "size": len(b)} for n, b in sorted(members.items())},
    }
    manifest_bytes = json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True).encode()
    signature = json.dumps({"format": "marine-audit-pack-signature/1", "alg": "Ed25519", "key_id": active.key_id,
                            "signature": active.sign(manifest_bytes)}, indent=1).encode()
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as pack:
        for member, data in [("manifest.json", manifest_bytes), ("manifest.sig", signature),
                             *sorted(members.items())]:
            pack.writestr(zipfile.ZipInfo(member, date_time=_zip_time()), data, compress_type=zipfile.ZIP_STORED)
    summary.members = len(members) + 2
    return summary


def _zip_time():
    now = timezone.now().astimezone(timezone.get_fixed_timezone(0))
    return (max(now.year, 1980), now.month, now.day, now.hour, now.minute, now.second)

"""Verify an audit export pack offline: ``python -m audit.verify_pack PACK --public-key KEY.pem``.

Needs only the standard library and ``cryptography``; it imports nothing from
Django or from the rest of this project, so an auditor may copy this one file
(with an empty ``audit/__init__.py`` beside it, or run it as a script).

It checks, with the public key(s) given and nothing from the pack trusted
beforehand:

1. ``manifest.json`` is signed (``manifest.sig``) by one of the given keys;
2. every member of the zip is listed in the manifest with its SHA-256 and
   size, and every listed member is present and matches;
3. every seal in ``seals.json`` hashes to its stated chain hash, follows the
   previous one (``prev_hash``, consecutive ``seq``), and is signed by a given
   key, keys taking over from one another in order (no return to a key that
   was rotated out);
4. every row of ``rows/*.jsonl`` is included in the signed seal it names: its
   canonical form, hashed as an RFC 6962 leaf, with its inclusion proof, gives
   the seal's Merkle tree head, at the position its id has in the seal.

Exit status: 0 when everything verifies, 1 when anything does not (each
failing row is named by table and id), 2 on a usage error (missing or
unreadable PACK or key file). The pack format is described in
``docs/operations.md`` ("Export packs").
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import sys
import zipfile

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

PACK_FORMAT = "marine-audit-pack/1"
SEAL_STATEMENT = "marine-audit-seal/1"
SIGNED_MEMBERS = ("manifest.json", "manifest.sig")
MAX_PROBLEMS_SHOWN = 200


class UsageError(Exception):
    pass


def canonical_json(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


# -- keys and signatures -------------------------------------------------------------------------


def key_id(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:32]


def load_keys(paths: list[str]) -> dict[str, Ed25519PublicKey]:
    keys: dict[str, Ed25519PublicKey] = {}
    marker = b"-----BEGIN PUBLIC KEY-----"
    for path in paths:
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise UsageError(f"--public-key {path}: {exc.strerror}") from None
        blocks = [marker + part for part in data.split(marker)[1:]]
        if not blocks:
            raise UsageError(f"--public-key {path}: no PEM public key in the file")
        for block in blocks:
            try:
                key = serialization.load_pem_public_key(block)
            except ValueError:
                raise UsageError(f"--public-key {path}: a PEM block is not a public key") from None
            if not isinstance(key, Ed25519PublicKey):
                raise UsageError(f"--public-key {path}: the key is not Ed25519")
            keys[key_id(key)] = key
    return keys


def signed_by(keys: dict, key: str, message: bytes, signature: str) -> bool:
    public = keys.get(key)
    if public is None or not isinstance(signature, str):
        return False
    try:
        public.verify(base64.b64decode(signature, validate=True), message)
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True


# -- Merkle (RFC 6962 hashing, RFC 9162 section 2.1.3.2 verification) ------------------------------


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes], head: bytes) -> bool:
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == head


# -- the checks --------------------------------------------------------------------------------------


class Result:
    def __init__(self):
        self.problems: list[str] = []
        self.rows = 0
        self.rows_ok = 0
        self.links = 0
        self.keys_used: set[str] = set()

    def fail(self, message: str) -> None:
        self.problems.append(message)


def link_hash(link: dict) -> str:
    metadata = {k: link.get(k) for k in ("seq", "kind", "created_at", "horizon", "ranges", "row_count", "details")}
    return hashlib.sha256((link["prev_hash"] + link["rows_digest"] + canonical_json(metadata)).encode()).hexdigest()


def link_statement(link: dict) -> bytes:
    return canonical_json({
        "format": SEAL_STATEMENT, "seq": link["seq"], "kind": link["kind"], "hash": link["hash"],
        "prev_hash": link["prev_hash"], "rows_digest": link["rows_digest"], "created_at": link["created_at"],
        "ranges": link["ranges"], "row_count": link["row_count"], "key_id": link["key_id"],
    }).encode()


def check_manifest(pack: zipfile.ZipFile, keys: dict, result: Result) -> dict | None:
    names = [info.filename for info in pack.infolist()]
    if len(names) != len(set(names)):
        result.fail("the pack holds two members with the same name")
    for required in SIGNED_MEMBERS:
        if required not in names:
            result.fail(f"the pack has no {required}")
            return None
    try:
        manifest_bytes = pack.read("manifest.json")
        signature = json.loads(pack.read("manifest.sig"))
        manifest = json.loads(manifest_bytes)
    except ValueError:
        result.fail("manifest.json or manifest.sig is not valid JSON")
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != PACK_FORMAT:
        result.fail(f"manifest.json is not a {PACK_FORMAT} manifest")
        return None
    if not isinstance(signature, dict) or not signed_by(keys, signature.get("key_id"), manifest_bytes,
                                                        signature.get("signature")):
        known = "a given key" if isinstance(signature, dict) and signature.get("key_id") in keys else "no given key"
        result.fail(f"manifest.json: the signature does not verify ({known} has its key id)")
        return None
    result.keys_used.add(signature["key_id"])
    members = manifest.get("members") or {}
    present = set(names) - set(SIGNED_MEMBERS)
    for name in sorted(present - set(members)):
        result.fail(f"{name}: in the pack but not in the signed manifest")
    for name, entry in sorted(members.items()):
        if name not in present:
            result.fail(f"{name}: listed in the manifest but missing from the pack")
            continue
        data = pack.read(name)
        if hashlib.sha256(data).hexdigest() != entry.get("sha256") or len(data) != entry.get("size"):
            result.fail(f"{name}: its SHA-256 differs from the signed manifest (the member was altered)")
    return manifest


def check_links(links: list, keys: dict, result: Result) -> dict[int, dict]:
    by_seq: dict[int, dict] = {}
    previous = None
    retired: set[str] = set()
    current_key = None
    for link in links:
        try:
            seq = int(link["seq"])
            label = f"{link['kind']} #{seq}"
            if link_hash(link) != link["hash"]:
                result.fail(f"{label}: its content does not hash to its chain hash (seal altered)")
            if previous is not None and (seq != previous["seq"] + 1 or link["prev_hash"] != previous["hash"]):
                result.fail(f"{label}: does not follow #{previous['seq']} in the chain")
            signer = link.get("key_id") or ""
            if not signed_by(keys, signer, link_statement(link), link.get("signature")):
                reason = "signed by a key that was not given" if signer and signer not in keys else \
                    "its signature does not verify"
                result.fail(f"{label}: {reason}" if signer else f"{label}: not signed")
            else:
                result.keys_used.add(signer)
                if signer in retired:
                    result.fail(f"{label}: signed with key {signer[:12]} after it was rotated out")
                if current_key and signer != current_key:
                    retired.add(current_key)
                current_key = signer
        except (KeyError, TypeError, ValueError):
            result.fail(f"seals.json: link {link.get('seq') if isinstance(link, dict) else '?'} is malformed")
            continue
        by_seq[seq] = link
        previous = link
        result.links += 1
    return by_seq


def position(link: dict, table: str, row_id: int, tables: list[str]) -> int | None:
    """The leaf index of ``table``/``row_id`` in a seal: tables in order, ids in order."""
    offset = 0
    for t in tables:
        for lo, hi in (link.get("ranges") or {}).get(t, []):
            if t == table and lo <= row_id <= hi:
                return offset + row_id - lo
            offset += hi - lo + 1
    return None


def check_rows(pack: zipfile.ZipFile, manifest: dict, links: dict, forms: dict, tables: list[str],
               result: Result) -> None:
    for name in sorted(manifest.get("members") or {}):
        if not (name.startswith("rows/") and name.endswith(".jsonl")):
            continue
        for number, line in enumerate(pack.read(name).decode("utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            result.rows += 1
            try:
                entry = json.loads(line)
                table, row_id = entry["table"], int(entry["id"])
            except (ValueError, KeyError, TypeError):
                result.fail(f"{name} line {number}: not a row entry")
                continue
            where = f"{table} id {row_id}"
            try:
                link = links.get(int(entry["seal"]))
                columns = forms[str(entry["form"])][table]
                record = entry["record"]
                values = [table, *[record[c] for c in columns]]
                proof = [bytes.fromhex(p) for p in entry["proof"]]
                index = int(entry["leaf_index"])
            except (KeyError, TypeError, ValueError):
                result.fail(f"{where}: its entry lacks a seal, a form, its columns or a proof")
                continue
            if link is None or link.get("kind") != "seal" or (link.get("details") or {}).get("tree") != "rfc6962":
                result.fail(f"{where}: names seal #{entry['seal']}, which is not a signed Merkle seal in this pack")
                continue
            if record.get("id") != row_id or position(link, table, row_id, tables) != index:
                result.fail(f"{where}: is not at the position seal #{link['seq']} gives its id")
                continue
            leaf = leaf_hash(canonical_json(values).encode())
            try:
                head = bytes.fromhex(link["rows_digest"])
            except ValueError:
                head = b""
            if not verify_inclusion(index, int(link["row_count"]), leaf, proof, head):
                result.fail(f"{where}: does not match seal #{link['seq']} (the row differs from what was sealed)")
                continue
            result.rows_ok += 1


def verify(pack_path: str, key_paths: list[str]) -> Result:
    keys = load_keys(key_paths)
    result = Result()
    try:
        pack = zipfile.ZipFile(pack_path)
    except FileNotFoundError:
        raise UsageError(f"{pack_path}: no such file") from None
    except OSError as exc:
        raise UsageError(f"{pack_path}: {exc.strerror}") from None
    except zipfile.BadZipFile:
        result.fail(f"{pack_path} is not a zip archive")
        return result
    with pack:
        manifest = check_manifest(pack, keys, result)
        if manifest is None:
            return result
        try:
            seals = json.loads(pack.read("seals.json"))
            links = check_links(list(seals["links"]), keys, result)
            forms, tables = seals["forms"], list(seals["tables"])
        except (KeyError, TypeError, ValueError):
            result.fail("seals.json is missing or malformed")
            return result
        check_rows(pack, manifest, links, forms, tables, result)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m audit.verify_pack",
        description="Verify an audit export pack with the public key(s) of the seals, offline.")
    parser.add_argument("pack", metavar="PACK", help="the pack (.zip) to verify")
    parser.add_argument("--public-key", action="append", required=True, metavar="KEY.pem",
                        help="a PEM file of one or more Ed25519 public keys; repeat for keys rotated out")
    args = parser.parse_args(argv)  # exits with status 2 on a usage error
    try:
        result = verify(args.pack, args.public_key)
    except UsageError as exc:
        print(f"verify_pack: {exc}", file=sys.stderr)
        return 2
    for problem in result.problems[:MAX_PROBLEMS_SHOWN]:
        print(f"FAILED {problem}")
    if len(result.problems) > MAX_PROBLEMS_SHOWN:
        print(f"... and {len(result.problems) - MAX_PROBLEMS_SHOWN} more problems")
    summary = (f"{result.rows_ok} of {result.rows} rows proven against {result.links} signed seals; "
               f"keys {', '.join(sorted(k[:12] for k in result.keys_used)) or 'none'}")
    if result.problems:
        print(f"Pack verification FAILED ({len(result.problems)} problems): {summary}.")
        return 1
    print(f"Pack verified: {summary}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

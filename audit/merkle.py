"""Merkle tree heads and inclusion proofs, hashed as RFC 6962 (Certificate Transparency) does.

- leaf hash: ``SHA-256(0x00 || data)``;
- node hash: ``SHA-256(0x01 || left || right)``;
- the tree head of ``n`` leaves (RFC 6962 section 2.1): the left subtree holds
  the largest power of two smaller than ``n``; the head of no leaf is
  ``SHA-256("")``.

Built level by level here (pair neighbours, carry an unpaired last node up
unchanged), which gives the same head and the same audit paths as the
recursive definition. Standard library only: :mod:`audit.verify_pack` has its
own copy of :func:`verify_inclusion` so that an auditor's verifier shares no
code with the server that built the proofs.
"""

from __future__ import annotations

import hashlib

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
HASH_BYTES = 32


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _parent_level(level: list[bytes]) -> list[bytes]:
    parents = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        parents.append(level[-1])
    return parents


def tree_head(leaves: list[bytes]) -> bytes:
    """The Merkle tree head of the leaf hashes, in order."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = list(leaves)
    while len(level) > 1:
        level = _parent_level(level)
    return level[0]


def tree_head_of(blob: bytes) -> bytes:
    """:func:`tree_head` of a concatenation of 32-byte leaf hashes (a seal's
    ``row_hashes``), a level at a time as one bytes object: a pair of
    neighbours is already the 64 bytes a node hashes."""
    if len(blob) % HASH_BYTES:
        raise ValueError(f"{len(blob)} bytes is not a whole number of {HASH_BYTES}-byte hashes")
    if not blob:
        return hashlib.sha256(b"").digest()
    sha256, pair = hashlib.sha256, 2 * HASH_BYTES
    level = bytes(blob)
    while len(level) > HASH_BYTES:
        odd = len(level) % pair
        parents = b"".join([sha256(NODE_PREFIX + level[i:i + pair]).digest()
                            for i in range(0, len(level) - odd, pair)])
        level = parents + level[len(level) - odd:] if odd else parents
    return level


def split_leaves(blob: bytes) -> list[bytes]:
    """A concatenation of 32-byte leaf hashes (a seal's ``row_hashes``) as a list."""
    if len(blob) % HASH_BYTES:
        raise ValueError(f"{len(blob)} bytes is not a whole number of {HASH_BYTES}-byte hashes")
    return [blob[i:i + HASH_BYTES] for i in range(0, len(blob), HASH_BYTES)]


class Tree:
    """Every level of one tree, kept so that many proofs cost one build."""

    def __init__(self, leaves: list[bytes]):
        self.size = len(leaves)
        self.levels = [list(leaves)]
        while len(self.levels[-1]) > 1:
            self.levels.append(_parent_level(self.levels[-1]))

    @property
    def head(self) -> bytes:
        return self.levels[-1][0] if self.size else hashlib.sha256(b"").digest()

    def proof(self, index: int) -> list[bytes]:
        """The audit path of leaf ``index`` (RFC 6962 section 2.1.1), bottom up."""
        if not 0 <= index < self.size:
            raise IndexError(f"leaf {index} is outside a tree of {self.size}")
        path = []
        for level in self.levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                path.append(level[sibling])
            index //= 2
        return path


def verify_inclusion(*, index: int, size: int, leaf: bytes, proof: list[bytes], head: bytes) -> bool:
    """RFC 9162 section 2.1.3.2: does ``proof`` put ``leaf`` at ``index`` of the tree ``head``?"""
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

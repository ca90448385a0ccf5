"""audit.merkle builds RFC 6962 tree heads and audit paths; both verifiers accept exactly those."""

import hashlib

import pytest

from audit import merkle, verify_pack


def reference_head(leaves):
    """RFC 6962 section 2.1, recursively: MTH(D[n]) splits at the largest power of two below n."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + reference_head(leaves[:k]) + reference_head(leaves[k:])).digest()


def leaves_of(n):
    return [merkle.leaf_hash(f"row {i}".encode()) for i in range(n)]


def test_the_hashing_is_rfc_6962s():
    # the empty tree and the leaf of empty data, as Certificate Transparency logs publish them
    assert merkle.tree_head_of(b"") == merkle.tree_head([])
    assert merkle.tree_head([]).hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert merkle.leaf_hash(b"").hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    a, b = merkle.leaf_hash(b"a"), merkle.leaf_hash(b"b")
    assert merkle.tree_head([a, b]) == hashlib.sha256(b"\x01" + a + b).digest()


@pytest.mark.parametrize("n", [*range(1, 18), 31, 32, 33, 100])
def test_every_proof_of_every_tree_size_verifies_in_both_verifiers(n):
    leaves = leaves_of(n)
    tree = merkle.Tree(leaves)
    assert tree.head == merkle.tree_head(leaves) == merkle.tree_head_of(b"".join(leaves)) == reference_head(leaves)
    for i, leaf in enumerate(leaves):
        proof = tree.proof(i)
        assert merkle.verify_inclusion(index=i, size=n, leaf=leaf, proof=proof, head=tree.head)
        assert verify_pack.verify_inclusion(i, n, leaf, proof, tree.head)


@pytest.mark.parametrize("n", [2, 5, 8, 13])
def test_a_wrong_leaf_index_or_proof_is_refused(n):
    """(The tree size is not proven by a path alone; it is the seal's signed row count.)"""
    leaves = leaves_of(n)
    tree = merkle.Tree(leaves)
    for i, leaf in enumerate(leaves):
        proof = tree.proof(i)
        other = leaves[(i + 1) % n]
        assert not verify_pack.verify_inclusion(i, n, other, proof, tree.head)
        assert not verify_pack.verify_inclusion((i + 1) % n, n, leaf, proof, tree.head)
        assert not verify_pack.verify_inclusion(i, n, leaf, proof[:-1], tree.head)
        assert not verify_pack.verify_inclusion(i, n, leaf, [*proof, leaf], tree.head)
    assert not verify_pack.verify_inclusion(n, n, leaves[0], tree.proof(0), tree.head)
    with pytest.raises(IndexError):
        tree.proof(n)

"""Merkle trees as RFC 9162 (and RFC 6962 before it) defines them. Pure: no database, no files.

    leaf hash  = SHA-256(0x00 || leaf data)
    node hash  = SHA-256(0x01 || left || right)
    empty tree = SHA-256("")

A tree of n leaves splits at k, the largest power of two below n: its left subtree holds the
first k leaves, its right subtree the rest. ``Frontier`` keeps a growing tree's compact range
(the roots of its perfect subtrees, largest first), enough to append and compute the root;
``inclusion_proof`` and ``consistency_proof`` build the audit paths of RFC 9162 section 2.1 from
the leaf hashes, and the ``verify_*`` functions check them without the tree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()
_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right).digest()


class Frontier:
    """A tree that grows at the right: its size and the roots of its perfect subtrees."""

    def __init__(self, size: int = 0, nodes: Sequence[bytes] = ()):
        if len(nodes) != size.bit_count():
            raise ValueError(f"a tree of {size} leaves has {size.bit_count()} subtree roots, not {len(nodes)}")
        self.size = size
        self.nodes = list(nodes)

    def append(self, hashed_leaf: bytes) -> None:
        """Add a leaf by its leaf hash."""
        h, n = hashed_leaf, self.size
        nodes = self.nodes
        while n & 1:
            h = _sha256(b"\x01" + nodes.pop() + h).digest()
            n >>= 1
        nodes.append(h)
        self.size += 1

    def root(self) -> bytes:
        if not self.nodes:
            return EMPTY_ROOT
        h = self.nodes[-1]
        for left in reversed(self.nodes[:-1]):
            h = _sha256(b"\x01" + left + h).digest()
        return h


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: Sequence[bytes], start: int = 0, end: int | None = None) -> bytes:
    """MTH of ``leaves[start:end]`` (leaf hashes), level by level: carrying an odd last node up
    unchanged gives the same tree as splitting at the largest power of two."""
    level = list(leaves[start:end])
    if not level:
        return EMPTY_ROOT
    sha = _sha256
    while len(level) > 1:
        paired = [sha(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def inclusion_proof(leaves: Sequence[bytes], index: int, size: int | None = None) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of the first ``size`` leaves (RFC 9162 2.1.3.1)."""
    size = len(leaves) if size is None else size
    if not 0 <= index < size <= len(leaves):
        raise ValueError(f"leaf {index} is not in a tree of {size} leaves")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index - start < k:
            path.append(root(leaves, start + k, end))
            end = start + k
        else:
            path.append(root(leaves, start, start + k))
            start += k
    return path[::-1]


def consistency_proof(leaves: Sequence[bytes], old_size: int, size: int | None = None) -> list[bytes]:
    """The proof that the tree of ``old_size`` leaves is a prefix of that of ``size`` (RFC 9162 2.1.4.1)."""
    size = len(leaves) if size is None else size
    if not 0 <= old_size <= size <= len(leaves):
        raise ValueError(f"no consistency proof from {old_size} to {size} leaves")
    if old_size == 0 or old_size == size:
        return []
    proof: list[bytes] = []
    start, end, m, complete = 0, size, old_size, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            proof.append(root(leaves, start + k, end))
            end = start + k
        else:
            proof.append(root(leaves, start, start + k))
            start, m, complete = start + k, m - k, False
    if not complete:
        proof.append(root(leaves, start, end))
    return proof[::-1]


def verify_inclusion(hashed_leaf: bytes, index: int, size: int, proof: Sequence[bytes], expected_root: bytes) -> bool:
    """RFC 9162 2.1.3.2."""
    if index >= size or index < 0:
        return False
    fn, sn, r = index, size - 1, hashed_leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == expected_root


def verify_consistency(old_size: int, size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes) -> bool:
    """RFC 9162 2.1.4.2 (with the trivial cases: an empty old tree, and equal sizes)."""
    if old_size > size or old_size < 0:
        return False
    if old_size == 0:
        return not proof
    if old_size == size:
        return not proof and old_root == new_root
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is a node of the new tree
        path.insert(0, old_root)
    fn, sn = old_size - 1, size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0

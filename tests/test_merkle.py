"""The Merkle tree: RFC 6962's published test vectors, proofs, and the tree the fold keeps."""

from __future__ import annotations

import hashlib
import os

import pytest
import sqlalchemy as sa

from tiergate import logtree, merkle
from tiergate.engine import Engine
from tiergate.metrics import summary

# The Certificate Transparency reference tests (merkle_tree_test.cc): eight leaves, the root of
# each prefix, and two audit paths of the 8-leaf tree. Literals, not computed here.
LEAVES = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
PATHS = {
    0: ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
    5: ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
}
HASHED = [merkle.leaf_hash(bytes.fromhex(leaf)) for leaf in LEAVES]


def test_roots_match_the_rfc_6962_reference_vectors() -> None:
    assert merkle.EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    frontier = merkle.Frontier()
    for n, expected in enumerate(ROOTS, start=1):
        frontier.append(HASHED[n - 1])
        assert merkle.root(HASHED[:n]).hex() == expected
        assert frontier.root().hex() == expected


def test_audit_paths_match_the_reference_vectors_and_verify() -> None:
    for index, path in PATHS.items():
        assert [p.hex() for p in merkle.inclusion_proof(HASHED, index)] == path
        assert merkle.verify_inclusion(HASHED[index], index, 8, [bytes.fromhex(p) for p in path],
                                       bytes.fromhex(ROOTS[7]))
    assert not merkle.verify_inclusion(HASHED[1], 0, 8, merkle.inclusion_proof(HASHED, 0), bytes.fromhex(ROOTS[7]))


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13, 64, 65])
def test_every_inclusion_and_consistency_proof_verifies_and_a_changed_tree_does_not(size: int) -> None:
    hashed = [merkle.leaf_hash(os.urandom(8)) for _ in range(size)]
    top = merkle.root(hashed)
    for i in range(size):
        assert merkle.verify_inclusion(hashed[i], i, size, merkle.inclusion_proof(hashed, i), top)
    for old in range(size + 1):
        proof = merkle.consistency_proof(hashed, old)
        assert merkle.verify_consistency(old, size, proof, merkle.root(hashed[:old]), top)
        if 0 < old < size:
            forged = merkle.root([merkle.leaf_hash(b"x"), *hashed[1:old]])
            assert not merkle.verify_consistency(old, size, proof, forged, top)


def test_the_fold_keeps_the_tree_over_every_entry_hash_in_id_order(engine: Engine) -> None:
    for n in range(3):
        run = engine.start("demo", {"ticket_id": f"T-{n}"}, actor="agent:bot").id
        engine.complete(run, "gather", {"summary": "Payslip totals are off", "severity": "S2"}, actor="agent:bot")
    summary.fold(engine.db)
    with engine.db.read() as conn:
        hashes = [r[0] for r in conn.execute(sa.text("SELECT hash FROM log_entries ORDER BY id"))]
        tree = logtree.head(conn)
        newest = conn.execute(sa.text("SELECT max(id) FROM log_entries")).scalar()
    expected = merkle.root([hashlib.sha256(b"\x00" + bytes.fromhex(h)).digest() for h in hashes])
    assert (tree.size, tree.root, tree.last_id) == (len(hashes), expected, newest)
    engine.skip(run, "extra", "n/a", actor="agent:bot")
    summary.fold(engine.db, batch=2)  # in batches, from the kept frontier
    with engine.db.read() as conn:
        ids, leaves = logtree.leaves(conn)
        assert logtree.head(conn).root == merkle.root(leaves) and logtree.head(conn).size == len(ids) > len(hashes)

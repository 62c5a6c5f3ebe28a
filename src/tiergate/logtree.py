"""The Merkle tree over the whole execution log: one leaf per entry, in id order.

A leaf's data is the entry's ``hash`` (its 32 bytes), so the tree covers every field of every
entry, and the order entries were written in. The table ``log_tree`` keeps the tree's compact
range (``merkle.Frontier``); the log summary's fold extends it between worker passes
(``metrics.summary``), never a step: a step writes what it did before this module existed.

On PostgreSQL an entry id may become visible after greater ones (transactions commit out of id
order). The tree grows only over a prefix of ids the fold knows complete: below the first id it
still waits for (the fold's *holes*), so a leaf is never inserted behind the tree's end.

    with db.read() as conn:
        tree = logtree.head(conn)             # size, root, newest entry id
        ids, hashes = logtree.leaves(conn)    # every entry's id and leaf hash, in id order
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, select, update

from tiergate.merkle import Frontier, leaf_hash
from tiergate.store.db import driver_cursor
from tiergate.store.tables import LogTree

_tree = LogTree.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class TreeHead:
    size: int
    root: bytes
    #: The id of the newest entry in the tree (0 when empty).
    last_id: int


def head(conn: Connection) -> TreeHead:
    row = conn.execute(select(_tree.c.size, _tree.c.root, _tree.c.last_id).where(_tree.c.id == 1)).one()
    return TreeHead(row.size, bytes.fromhex(row.root), row.last_id)


def _sql(conn: Connection, sql: str) -> str:
    return sql if conn.dialect.name == "sqlite" else sql.replace("?", "%s")


def extend(conn: Connection, upto_id: int, limit: int) -> tuple[int, bool]:
    """Append the entries with ids up to ``upto_id`` not in the tree yet (at most ``limit``), in
    the caller's write transaction. Returns (leaves added, whether more wait below ``upto_id``)."""
    size, last_id, nodes = conn.execute(select(_tree.c.size, _tree.c.last_id, _tree.c.frontier)
                                        .where(_tree.c.id == 1)).one()
    if upto_id <= last_id:
        return 0, False
    with driver_cursor(conn) as cursor:
        cursor.execute(_sql(conn, "SELECT id, hash FROM log_entries WHERE id > ? AND id <= ? ORDER BY id LIMIT ?"),
                       (last_id, upto_id, limit))
        rows = cursor.fetchall()
    if not rows:
        return 0, False
    frontier = Frontier(size, [bytes.fromhex(n) for n in nodes])
    for _id, entry_hash in rows:
        frontier.append(_leaf(entry_hash))
    conn.execute(update(_tree).where(_tree.c.id == 1).values(
        size=frontier.size, last_id=rows[-1][0], frontier=[n.hex() for n in frontier.nodes],
        root=frontier.root().hex(), updated_at=datetime.now(UTC)))
    return len(rows), len(rows) == limit


def leaves(conn: Connection, upto_id: int | None = None) -> tuple[list[int], list[bytes]]:
    """Every entry's id and leaf hash, in id order (up to ``upto_id``), as the log now stands."""
    sql = "SELECT id, hash FROM log_entries" + ("" if upto_id is None else " WHERE id <= ?") + " ORDER BY id"
    with driver_cursor(conn) as cursor:
        cursor.execute(_sql(conn, sql), () if upto_id is None else (upto_id,))
        rows = cursor.fetchall()
    return [r[0] for r in rows], [_leaf(r[1]) for r in rows]


def _leaf(entry_hash: str) -> bytes:
    try:
        return leaf_hash(bytes.fromhex(entry_hash))
    except ValueError:  # not hex: an edited hash column still makes a leaf (a wrong one)
        return leaf_hash(entry_hash.encode("utf-8"))

"""Signed checkpoints: every rewrite of the database made after a checkpoint is found and named,
proofs check without the database, and a witness refuses a fork.

The note verifier here is written from the C2SP signed-note, tlog-checkpoint and
tlog-cosignature specifications, not from tiergate's code.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from support import HomeBuilder

from tiergate import checkpoints, logproof, notes, witness
from tiergate.engine import Engine
from tiergate.errors import CheckpointError
from tiergate.log import entry_hash

GOOD = {"summary": "Payslip totals are off by one cent", "severity": "S2"}


# --- an independent reader of the formats (from the specifications) -----------------------------

def spec_verify(note: str, vkey: str, signature_type: int = 0x01) -> tuple[str, bytes]:
    """Verify a signed note with a verifier key 'name+hexid+base64(type||pubkey)'. Returns (text,
    the signature's bytes after the key ID)."""
    name, hex_id, material = vkey.strip().split("+", 2)
    raw = base64.b64decode(material)
    assert raw[0] == signature_type and len(raw) == 33
    public = raw[1:]
    key_id = hashlib.sha256(name.encode() + b"\n" + bytes([signature_type]) + public).digest()[:4]
    assert key_id.hex() == hex_id
    text, _, signatures = note.rpartition("\n\n")
    text += "\n"
    for line in signatures.splitlines():
        dash, signer, encoded = line.split(" ")
        assert dash == "\u2014"
        blob = base64.b64decode(encoded)
        if signer == name and blob[:4] == key_id:
            return text, blob[4:]
    raise AssertionError(f"no signature by {name}")


def spec_checkpoint(note: str, vkey: str) -> tuple[str, int, bytes]:
    text, signature = spec_verify(note, vkey)
    public = base64.b64decode(vkey.strip().split("+", 2)[2])[1:]
    Ed25519PublicKey.from_public_bytes(public).verify(signature, text.encode())  # raises if wrong
    origin, size, root, *_rest = text.split("\n")
    return origin, int(size), base64.b64decode(root)


def spec_root(hashes: list[str]) -> bytes:
    """RFC 6962 MTH over the entries' hashes, by its recursive definition."""
    def mth(items: list[bytes]) -> bytes:
        if not items:
            return hashlib.sha256(b"").digest()
        if len(items) == 1:
            return hashlib.sha256(b"\x00" + items[0]).digest()
        k = 1
        while k * 2 < len(items):
            k *= 2
        return hashlib.sha256(b"\x01" + mth(items[:k]) + mth(items[k:])).digest()
    return mth([bytes.fromhex(h) for h in hashes])


# --- helpers ------------------------------------------------------------------------------------

def _sql(engine: Engine, statement: str, **params: Any) -> Any:
    with engine.db.write() as conn:
        return conn.execute(sa.text(statement), params)


def _hashes(engine: Engine) -> list[str]:
    with engine.db.read() as conn:
        return [r[0] for r in conn.execute(sa.text("SELECT hash FROM log_entries ORDER BY id"))]


def _state(engine: Engine, run_id: str) -> str:
    with engine.db.read() as conn:
        return conn.execute(sa.text("SELECT CAST(state AS TEXT) FROM runs WHERE id = :id"), {"id": run_id}).scalar()


def _rehash(engine: Engine, run_id: str) -> None:
    """What an attacker with the database does: recompute a run's chain and move its anchor."""
    with engine.db.write() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.text(
            "SELECT * FROM log_entries WHERE run_id = :r ORDER BY seq"), {"r": run_id})]
        prev = "0" * 64
        for row in rows:
            row["detail"] = json.loads(row["detail"]) if isinstance(row["detail"], str) else row["detail"]
            if isinstance(row["at"], str):
                from datetime import datetime
                row["at"] = datetime.fromisoformat(row["at"])
            row["prev_hash"] = prev
            prev = entry_hash(row)
            conn.execute(sa.text("UPDATE log_entries SET prev_hash = :p, hash = :h WHERE id = :id"),
                         {"p": row["prev_hash"], "h": prev, "id": row["id"]})
        conn.execute(sa.text("UPDATE runs SET log_seq = :s, log_head = :h WHERE id = :r"),
                     {"s": len(rows), "h": prev, "r": run_id})


@pytest.fixture
def signer(tmp_path: Path) -> notes.Signer:
    return notes.generate("example.com/tiergate-test")


@pytest.fixture
def history(engine: Engine, signer: notes.Signer, tmp_path: Path) -> dict[str, Any]:
    """Two runs, checkpoint 1; a third run and more steps, checkpoint 2."""
    folder = tmp_path / "checkpoints"
    first = engine.start("demo", {"ticket_id": "T-1"}, actor="agent:bot").id
    engine.complete(first, "gather", GOOD, actor="agent:bot")
    second = engine.start("demo", {"ticket_id": "T-2"}, actor="agent:bot").id
    one = checkpoints.write_checkpoint(engine, signer, folder)
    third = engine.start("demo", {"ticket_id": "T-3"}, actor="agent:bot").id
    before_tail = _state(engine, third)
    engine.complete(third, "gather", GOOD, actor="agent:bot")
    two = checkpoints.write_checkpoint(engine, signer, folder)
    engine.complete(second, "gather", GOOD, actor="agent:bot")  # after the last checkpoint
    return {"folder": folder, "runs": (first, second, third), "one": one, "two": two, "before_tail": before_tail}


def _audit(engine: Engine, history: dict[str, Any], signer: notes.Signer) -> dict[str, Any]:
    with engine.db.read() as conn:
        return logproof.audit(conn, history["folder"], signer.verifier)


# --- checkpoints are C2SP checkpoints -----------------------------------------------------------

def test_a_checkpoint_verifies_with_an_independent_note_verifier(engine: Engine, history: dict[str, Any],
                                                                 signer: notes.Signer) -> None:
    note = Path(history["two"]["file"]).read_text(encoding="utf-8")
    origin, size, root = spec_checkpoint(note, signer.verifier.text())
    hashes = _hashes(engine)
    assert origin == "example.com/tiergate-test" and size == history["two"]["size"] < len(hashes)
    assert root == spec_root(hashes[:size])
    forged = note.replace(f"\n{size}\n", f"\n{size - 1}\n")
    with pytest.raises(InvalidSignature):
        spec_checkpoint(forged, signer.verifier.text())
    assert _audit(engine, history, signer)["broken"] is None


# --- each rewrite is found, and named -----------------------------------------------------------

def test_a_rehashed_chain_with_its_anchor_moved_is_found(engine: Engine, history: dict[str, Any],
                                                         signer: notes.Signer) -> None:
    first = history["runs"][0]
    _sql(engine, "UPDATE log_entries SET actor_id = 'someone-else' WHERE run_id = :r AND seq = 2", r=first)
    _rehash(engine, first)
    assert engine.verify_log()["ok"] is True  # the chain alone cannot tell
    broken = _audit(engine, history, signer)["broken"]
    assert broken["checkpoint"] == history["one"]["file"] and broken["last_good"] is None
    assert "no longer extends" in broken["problem"]


def test_a_deleted_tail_with_the_state_rolled_back_is_found(engine: Engine, history: dict[str, Any],
                                                            signer: notes.Signer) -> None:
    third = history["runs"][2]
    with engine.db.read() as conn:
        kept = conn.execute(sa.text("SELECT seq, hash FROM log_entries WHERE run_id = :r AND event = 'step_ready' "
                                    "ORDER BY seq LIMIT 1"), {"r": third}).one()
    _sql(engine, "DELETE FROM log_entries WHERE run_id = :r AND seq > :s", r=third, s=kept.seq)
    _sql(engine, "UPDATE runs SET state = :st, log_seq = :s, log_head = :h, status = 'active' WHERE id = :r",
         st=history["before_tail"], s=kept.seq, h=kept.hash, r=third)
    assert engine.verify_log()["ok"] is True
    broken = _audit(engine, history, signer)["broken"]
    assert broken["checkpoint"] == history["two"]["file"] and broken["last_good"] == history["one"]["file"]
    assert broken["entry_ids"][0] > 0


def test_a_whole_deleted_run_is_found(engine: Engine, history: dict[str, Any], signer: notes.Signer) -> None:
    first = history["runs"][0]
    _sql(engine, "DELETE FROM log_entries WHERE run_id = :r", r=first)
    _sql(engine, "DELETE FROM runs WHERE id = :r", r=first)
    assert engine.verify_log()["ok"] is True
    broken = _audit(engine, history, signer)["broken"]
    assert broken["checkpoint"] == history["one"]["file"]


def test_two_swapped_ids_are_found(engine: Engine, history: dict[str, Any], signer: notes.Signer) -> None:
    second, third = history["runs"][1], history["runs"][2]
    with engine.db.read() as conn:
        a = conn.execute(sa.text("SELECT min(id) FROM log_entries WHERE run_id = :r"), {"r": second}).scalar()
        b = conn.execute(sa.text("SELECT min(id) FROM log_entries WHERE run_id = :r"), {"r": third}).scalar()
    _sql(engine, "UPDATE log_entries SET id = -1 WHERE id = :a", a=a)
    _sql(engine, "UPDATE log_entries SET id = :a WHERE id = :b", a=a, b=b)
    _sql(engine, "UPDATE log_entries SET id = :b WHERE id = -1", b=b)
    assert engine.verify_log()["ok"] is True
    broken = _audit(engine, history, signer)["broken"]
    # The second run's first entry is covered by the first checkpoint: that one is named.
    assert broken["checkpoint"] == history["one"]["file"] and broken["entry_ids"][0] <= a <= broken["entry_ids"][1]


def test_an_edited_run_state_is_found_and_named(engine: Engine, history: dict[str, Any], cli: Any,
                                                demo_home: HomeBuilder, tmp_path: Path) -> None:
    second = history["runs"][1]
    edited = json.loads(_state(engine, second))
    edited["data"] = {"ticket_id": "T-forged"}
    _sql(engine, "UPDATE runs SET state = :s WHERE id = :r", s=json.dumps(edited), r=second)
    result = cli("log", "verify", "--json", home=demo_home)
    assert result.returncode == 1 and result.json["error"]["code"] == "log_tampered"
    assert f"the log of run {second}" in result.json["error"]["message"]
    assert "runs.state was edited" in result.json["error"]["message"]


def test_log_verify_with_checkpoints_on_the_command_line(engine: Engine, history: dict[str, Any], cli: Any,
                                                         demo_home: HomeBuilder, signer: notes.Signer,
                                                         tmp_path: Path) -> None:
    pub = tmp_path / "log-signing.pub"
    pub.write_text(signer.verifier.text() + "\n")
    folder = str(history["folder"])
    good = cli("log", "verify", "--checkpoints", folder, "--public-key", str(pub), home=demo_home)
    assert good.returncode == 0 and "extends all 2 checkpoints" in good.stdout
    _sql(engine, "DELETE FROM log_entries WHERE run_id = :r", r=history["runs"][0])
    _sql(engine, "DELETE FROM runs WHERE id = :r", r=history["runs"][0])
    bad = cli("log", "verify", "--checkpoints", folder, "--public-key", str(pub), "--json", home=demo_home)
    assert bad.returncode == 1 and bad.json["error"]["code"] == "log_tampered"
    assert bad.json["error"]["details"]["checkpoints"]["broken"]["checkpoint"] == history["one"]["file"]
    other = tmp_path / "other.pub"
    other.write_text(notes.generate("example.com/tiergate-test").verifier.text() + "\n")
    wrong_key = cli("log", "verify", "--checkpoints", folder, "--public-key", str(other), "--json", home=demo_home)
    assert wrong_key.returncode == 1 and wrong_key.json["error"]["code"] == "signature_invalid"


# --- keys, checkpoint files, proofs -------------------------------------------------------------

def test_keygen_checkpoint_prove_and_check_proof(cli: Any, demo_home: HomeBuilder, tmp_path: Path,
                                                 make_engine: Any) -> None:
    keys = tmp_path / "keys"
    made = cli("log", "keygen", "--out", str(keys), "--name", "example.com/log", "--json", home=demo_home)
    assert made.returncode == 0
    assert stat.S_IMODE((keys / "log-signing.key").stat().st_mode) == 0o600
    assert cli("log", "keygen", "--out", str(keys), home=demo_home).returncode == 2  # no silent replacement
    engine = make_engine(demo_home)
    run = engine.start("demo", {"ticket_id": "T-1"}, actor="agent:bot").id
    engine.complete(run, "gather", GOOD, actor="agent:bot")
    out = tmp_path / "cps"
    from_env = cli("log", "checkpoint", "--out", str(out), "--json", home=demo_home,
                   env={"TIERGATE_LOG_KEY": (keys / "log-signing.key").read_text()})
    assert from_env.returncode == 0, from_env
    written = from_env.json["data"]
    note = Path(written["file"]).read_text()
    assert spec_checkpoint(note, (keys / "log-signing.pub").read_text())[1] == written["size"] == len(_hashes(engine))
    entry = engine.log(run)[2]["id"]
    proof_file = tmp_path / "proof.json"
    proved = cli("log", "prove", str(entry), "--checkpoints", str(out), "--out", str(proof_file), home=demo_home)
    assert proved.returncode == 0, proved
    printed = cli("log", "prove", str(entry), "--checkpoints", str(out), home=demo_home)
    assert json.loads(printed.stdout) == json.loads(proof_file.read_text())
    pub = str(keys / "log-signing.pub")
    checked = cli("log", "check-proof", str(proof_file), "--public-key", pub,
                  env={"TIERGATE_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"}, home=tmp_path)
    assert checked.returncode == 0 and f"entry {entry}" in checked.stdout, checked
    proof = json.loads(proof_file.read_text())
    proof["entry"]["actor_id"] = "someone-else"
    proof_file.write_text(json.dumps(proof))
    forged = cli("log", "check-proof", str(proof_file), "--public-key", pub, "--json", home=tmp_path)
    assert forged.returncode == 1 and forged.json["error"]["code"] == "proof_invalid"
    proof = json.loads(proved.stdout) if proved.stdout.startswith("{") else json.loads(printed.stdout)
    proof["leaf_index"] = (proof["leaf_index"] + 1) % proof["tree_size"]
    proof_file.write_text(json.dumps(proof))
    moved = cli("log", "check-proof", str(proof_file), "--public-key", pub, "--json", home=tmp_path)
    assert moved.returncode == 1 and moved.json["error"]["code"] == "proof_invalid"
    missing = cli("log", "checkpoint", "--out", str(out), "--json", home=demo_home)
    assert missing.returncode == 2 and missing.json["error"]["code"] == "key_invalid"


def test_a_second_tree_of_a_signed_size_is_refused(engine: Engine, history: dict[str, Any],
                                                   signer: notes.Signer) -> None:
    signed = checkpoints.write_checkpoint(engine, signer, history["folder"])
    assert checkpoints.write_checkpoint(engine, signer, history["folder"]) == signed  # the same tree: kept
    _sql(engine, "UPDATE log_entries SET actor_id = 'x' WHERE run_id = :r AND seq = 1", r=history["runs"][0])
    _rehash(engine, history["runs"][0])
    _sql(engine, "DELETE FROM log_tree")  # a rewriter rebuilds the tree too
    _sql(engine, "INSERT INTO log_tree (id, size, last_id, frontier, root) VALUES (1, 0, 0, '[]', :r)",
         r=hashlib.sha256(b"").hexdigest())
    with pytest.raises(CheckpointError) as caught:
        checkpoints.write_checkpoint(engine, signer, history["folder"])
    assert caught.value.code == "log_forked"


# --- the witness --------------------------------------------------------------------------------

def _request(engine: Engine, signer: notes.Signer, old: int, note: str) -> str:
    from tiergate import logtree, merkle
    with engine.db.read() as conn:
        _ids, leaves = logtree.leaves(conn)
    size = checkpoints.parse(note, "t").size
    return witness.request_body(old, merkle.consistency_proof(leaves[:size], old), note)


def test_the_witness_cosigns_what_extends_and_refuses_a_fork(engine: Engine, history: dict[str, Any],
                                                             signer: notes.Signer, tmp_path: Path) -> None:
    witness_key = notes.generate("witness.example/w1", notes.COSIGNATURE)
    state = tmp_path / "witness"
    one = Path(history["one"]["file"]).read_text()
    two = Path(history["two"]["file"]).read_text()
    line = witness.add_checkpoint(_request(engine, signer, 0, one), signer.verifier, witness_key, state, now=1700000000)
    # The cosignature, read as tlog-cosignature says: key ID (type 0x04), timestamp, signature.
    text, blob = spec_verify(one + line, witness_key.verifier.text(), 0x04)
    assert int.from_bytes(blob[:8], "big") == 1700000000
    Ed25519PublicKey.from_public_bytes(witness_key.verifier.public).verify(
        blob[8:], b"cosignature/v1\ntime 1700000000\n" + text.encode())
    size_one = history["one"]["size"]
    witness.add_checkpoint(_request(engine, signer, size_one, two), signer.verifier, witness_key, state)
    # A fork: another tree of the same size, signed by the same key.
    origin, size, _root = spec_checkpoint(two, signer.verifier.text())
    fork = notes.sign(checkpoints.body(origin, size, hashlib.sha256(b"another history").digest()), signer)
    with pytest.raises(CheckpointError) as caught:
        witness.add_checkpoint(witness.request_body(size, [], fork), signer.verifier, witness_key, state)
    assert caught.value.code == "log_forked"
    # A stale old size is answered with the size the witness knows; a smaller tree is refused.
    with pytest.raises(CheckpointError) as stale:
        witness.add_checkpoint(_request(engine, signer, size_one, two), signer.verifier, witness_key, state)
    assert stale.value.code == "witness_conflict" and stale.value.details["known_size"] == size
    with pytest.raises(CheckpointError) as back:
        witness.add_checkpoint(witness.request_body(size, [], one), signer.verifier, witness_key, state)
    assert back.value.code == "log_forked"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_checkpoint_is_posted_to_a_witness_over_http(cli: Any, demo_home: HomeBuilder, make_engine: Any,
                                                     tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    assert cli("log", "keygen", "--out", str(keys), home=demo_home).returncode == 0
    assert cli("log", "keygen", "--out", str(keys), "--witness", home=demo_home).returncode == 0
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIERGATE_")}
    server = subprocess.Popen([sys.executable, "-m", "tiergate", "log", "witness", "--log-key",
                               str(keys / "log-signing.pub"), "--key", str(keys / "witness-signing.key"),
                               "--state", str(tmp_path / "wstate"), "--listen", f"127.0.0.1:{port}"],
                              env=env, cwd=tmp_path)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        engine = make_engine(demo_home)
        url = f"http://127.0.0.1:{port}/add-checkpoint"
        for n in range(2):
            engine.start("demo", {"ticket_id": f"T-{n}"}, actor="agent:bot")
            sent = cli("log", "checkpoint", "--key", str(keys / "log-signing.key"), "--out", str(tmp_path / "cps"),
                       "--witness-url", url, "--json", home=demo_home)
            assert sent.returncode == 0 and sent.json["data"]["witness"]["ok"] is True, sent
        note = Path(sent.json["data"]["file"]).read_text()
        spec_verify(note, (keys / "witness-signing.pub").read_text(), 0x04)
        spec_checkpoint(note, (keys / "log-signing.pub").read_text())
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_the_worker_writes_a_checkpoint_every_n_entries(demo_home: HomeBuilder, make_engine: Any, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from tiergate import worker
    from tiergate.metrics import summary

    key = notes.generate("example.com/worker-log")
    monkeypatch.setenv("TIERGATE_LOG_KEY", key.text())
    monkeypatch.setenv("TIERGATE_LOG_CHECKPOINTS", str(tmp_path / "cps"))
    monkeypatch.setenv("TIERGATE_LOG_CHECKPOINT_ENTRIES", "10")
    monkeypatch.setenv("TIERGATE_LOG_CHECKPOINT_MINUTES", "0")
    engine = make_engine(demo_home)
    schedule = checkpoints.Schedule()
    assert checkpoints.maybe_write(engine, schedule) is None  # an empty log: nothing to sign
    engine.start("demo", {"ticket_id": "T-0"}, actor="agent:bot")
    worker.run_pass(engine)
    summary.fold(engine.db)
    first = checkpoints.maybe_write(engine, schedule)
    assert first is not None and first["size"] == len(_hashes(engine))
    written = [first["size"]]
    for n in range(1, 8):
        engine.start("demo", {"ticket_id": f"T-{n}"}, actor="agent:bot")
        summary.fold(engine.db)
        again = checkpoints.maybe_write(engine, schedule)
        size = len(_hashes(engine))
        if again is None:
            assert size - written[-1] < 10
        else:
            assert again["size"] == size and size - written[-1] >= 10
            written.append(size)
    assert len(written) >= 2
    files = sorted((tmp_path / "cps").glob("checkpoint-*.txt"))
    assert [spec_checkpoint(f.read_text(), key.verifier.text())[1] for f in files] == written

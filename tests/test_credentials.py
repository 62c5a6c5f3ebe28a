"""Principals and tokens: operator commands on the database directly, and authentication."""

from __future__ import annotations

import getpass
import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import pytest
import sqlalchemy as sa

from support import CLIResult, HomeBuilder
from tiergate.credentials import Credentials, secret_hash
from tiergate.errors import UnauthorizedError

OS_USER = f"os:{getpass.getuser()}"


def _dump(engine: Any) -> str:
    """Every stored row of the credential and log tables, as text."""
    with engine.db.read() as conn:
        return json.dumps([[list(map(str, r)) for r in conn.execute(sa.text(f"SELECT * FROM {t}"))]
                           for t in ("tokens", "credential_events", "log_entries", "principals")])


def test_tokens_issue_shows_the_secret_once_and_stores_only_its_hash(
        demo_home: HomeBuilder, cli: Callable[..., CLIResult], make_engine: Any) -> None:
    added = cli("principals", "add", "human:alice", "--name", "Alice Example", "--email", "alice@example.com",
                "--json", home=demo_home)
    assert added.returncode == 0, added
    assert added.json["data"]["id"] == "human:alice" and added.json["data"]["created_by"] == OS_USER

    issued = cli("tokens", "issue", "agent:triage-bot", "--expires", "30d", "--json", home=demo_home)
    assert issued.returncode == 0, issued
    token, token_id = issued.json["data"]["token"], issued.json["data"]["id"]
    assert re.fullmatch(r"tg_[A-Za-z0-9_-]{43}", token)
    assert issued.json["data"]["principal"] == "agent:triage-bot"

    listed = cli("tokens", "list", "--json", home=demo_home)
    assert [t["id"] for t in listed.json["data"]] == [token_id]
    assert token not in listed.stdout and "secret" not in listed.stdout
    assert listed.json["data"][0]["state"] == "active" and listed.json["data"][0]["expires_at"]

    engine = make_engine(demo_home)
    stored = _dump(engine)
    assert token not in stored and token[3:] not in stored
    assert secret_hash(token) in stored
    assert Credentials(engine).authenticate(token).door == f"token:{token_id}"

    principals = cli("principals", "list", "--json", home=demo_home).json["data"]
    assert [p["id"] for p in principals] == ["agent:triage-bot", "human:alice"]  # registered by the issue


def test_issuing_and_revoking_are_recorded_with_the_os_user_through_the_direct_door(
        demo_home: HomeBuilder, cli: Callable[..., CLIResult], make_engine: Any) -> None:
    issued = cli("tokens", "issue", "agent:bot", "--json", home=demo_home).json["data"]
    engine = make_engine(demo_home)
    credentials = Credentials(engine)
    assert credentials.authenticate(issued["token"]).principal.id == "bot"

    revoked = cli("tokens", "revoke", issued["id"], "--json", home=demo_home)
    assert revoked.returncode == 0, revoked
    assert revoked.json["data"]["state"] == "revoked" and revoked.json["data"]["revoked_by"] == OS_USER
    with pytest.raises(UnauthorizedError) as err:
        credentials.authenticate(issued["token"])
    assert issued["token"] not in err.value.message

    events = [(e["event"], e["principal"], e["token"], e["actor"], e["door"]) for e in credentials.events()]
    assert events == [("principal_added", "agent:bot", None, OS_USER, "direct"),
                      ("token_issued", "agent:bot", issued["id"], OS_USER, "direct"),
                      ("token_revoked", "agent:bot", issued["id"], OS_USER, "direct")]


def test_disabling_a_principal_stops_its_tokens(demo_home: HomeBuilder, cli: Callable[..., CLIResult],
                                                make_engine: Any) -> None:
    issued = cli("tokens", "issue", "human:carol", "--json", home=demo_home).json["data"]
    disabled = cli("principals", "disable", "human:carol", "--json", home=demo_home)
    assert disabled.returncode == 0 and disabled.json["data"]["active"] is False
    engine = make_engine(demo_home)
    with pytest.raises(UnauthorizedError):
        Credentials(engine).authenticate(issued["token"])
    again = cli("tokens", "issue", "human:carol", "--json", home=demo_home)
    assert again.returncode == 1 and again.json["error"]["details"]["reason"] == "principal_disabled"


def test_expired_unknown_and_malformed_tokens_are_unauthorized(demo_home: HomeBuilder, make_engine: Any) -> None:
    moment = [datetime(2026, 12, 1, tzinfo=timezone.utc)]
    engine = make_engine(demo_home, clock=lambda: moment[0])
    credentials = Credentials(engine)
    issued = credentials.issue_token("agent:bot", expires="1h", by="os:test")
    assert credentials.authenticate(issued["token"]).principal.kind == "agent"
    moment[0] += timedelta(hours=1)
    with pytest.raises(UnauthorizedError, match=f"token {issued['id']} expired"):
        credentials.authenticate(issued["token"])
    for bad in (None, "", "Bearer x", "tg_" + "A" * 43, issued["token"] + "x"):
        with pytest.raises(UnauthorizedError):
            credentials.authenticate(bad)
    assert credentials.tokens()[0]["state"] == "expired"


def test_bad_input_is_explained_and_changes_nothing(demo_home: HomeBuilder, cli: Callable[..., CLIResult]) -> None:
    bad_actor = cli("tokens", "issue", "robot:x", "--json", home=demo_home)
    assert bad_actor.returncode == 2 and bad_actor.json["error"]["code"] == "actor_invalid"
    bad_expiry = cli("tokens", "issue", "agent:x", "--expires", "soon", "--json", home=demo_home)
    assert bad_expiry.returncode == 2 and "45m, 12h, 30d, 2w" in bad_expiry.json["error"]["message"]
    unknown = cli("tokens", "revoke", "nope", "--json", home=demo_home)
    assert unknown.returncode == 1 and unknown.json["error"]["code"] == "not_found"
    cli("principals", "add", "human:dave", home=demo_home)
    twice = cli("principals", "add", "human:dave", "--json", home=demo_home)
    assert twice.returncode == 2 and twice.json["error"]["code"] == "principal_exists"
    assert "Traceback" not in twice.stderr + unknown.stderr + bad_expiry.stderr
    assert [p["id"] for p in cli("principals", "list", "--json", home=demo_home).json["data"]] == ["human:dave"]
    assert cli("tokens", "list", "--json", home=demo_home).json["data"] == []

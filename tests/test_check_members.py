"""`tiergate check` names role members that are not registered principals once a server is in use."""

from __future__ import annotations

from typing import Any, Callable

from support import CLIResult, HomeBuilder
from tiergate.credentials import Credentials


def test_before_a_server_is_in_use_members_need_no_registration(
        demo_home: HomeBuilder, cli: Callable[..., CLIResult], make_engine: Any) -> None:
    make_engine(demo_home).runs()   # the database exists, with no principal
    result = cli("check", "--json", home=demo_home)
    assert result.returncode == 0, result
    assert result.json["data"]["problems"] == []


def test_unregistered_and_disabled_members_are_named_with_their_line(
        demo_home: HomeBuilder, cli: Callable[..., CLIResult], make_engine: Any) -> None:
    credentials = Credentials(make_engine(demo_home))
    for member in ("human:alice", "human:carol", "agent:reviewer-bot"):
        credentials.add_principal(member, by="os:test")
    credentials.disable_principal("human:carol", by="os:test")

    result = cli("check", home=demo_home)
    assert result.returncode == 1, result
    lines = [line for line in result.stdout.splitlines() if line.startswith("tiers/roles.yaml")]
    assert len(lines) == 2, result.stdout
    assert lines[0].startswith("tiers/roles.yaml:4: member 'human:bob' of role 'lead' is not a registered principal")
    assert "tiergate principals add human:bob" in lines[0]
    assert lines[1].startswith("tiers/roles.yaml:7: warning: member 'human:carol' of role 'reviewer' is a disabled")

    credentials.add_principal("human:bob", by="os:test")
    again = cli("check", "--json", home=demo_home)
    assert again.returncode == 0, again
    assert [p["severity"] for p in again.json["data"]["problems"]] == ["warning"]


def test_check_neither_creates_nor_needs_the_database(demo_home: HomeBuilder, cli: Callable[..., CLIResult],
                                                      tmp_path: Any) -> None:
    missing = tmp_path / "nowhere" / "tiergate.db"
    result = cli("check", "--json", home=demo_home, env={"TIERGATE_DATABASE_URL": f"sqlite:///{missing}"})
    assert result.returncode == 0, result
    assert not missing.parent.exists()

    unreachable = "postgresql+psycopg://nobody:secret@127.0.0.1:9/none"
    result = cli("check", "--json", home=demo_home, env={"TIERGATE_DATABASE_URL": unreachable})
    assert result.returncode == 0, result
    assert result.json["data"]["problems"] == []

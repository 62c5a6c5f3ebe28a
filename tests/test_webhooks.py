"""Webhooks: signed POSTs to a receiver on 127.0.0.1, from an outbox the log fills, retried later."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator

import pytest
import sqlalchemy as sa

from support import CLIResult, HomeBuilder
from tiergate import webhooks
from tiergate.engine import Engine
from tiergate.server.prometheus import exposition

SECRET = "whsec-test-7f3a9c"
GOOD = {"summary": "Payslip totals are off by one cent", "severity": "S2"}
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


class Receiver:
    """An HTTP receiver on 127.0.0.1 that records each POST and answers ``status[0]``."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, str], bytes]] = []
        self.status = [200]
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.calls.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.status[0])
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self) -> list[tuple[str, str | None]]:
        return [(json.loads(body)["event"], json.loads(body)["step"]) for _h, body in self.calls]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _config(home: HomeBuilder, url: str, events: str, roles: str = "") -> None:
    home.write("tiergate.toml", f'[[webhooks]]\nname = "ops"\nurl = "{url}"\nevents = {events}\n{roles}'
                                'secret_env = "TG_TEST_HOOK_SECRET"\n')


def _backlog(engine: Engine) -> dict[str, int]:
    with engine.db.read() as conn:
        return webhooks.backlog(conn)


def test_events_are_signed_filtered_by_role_and_sent_once(
        demo_home: HomeBuilder, make_engine: Callable[..., Engine], receiver: Receiver,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TG_TEST_HOOK_SECRET", SECRET)
    _config(demo_home, receiver.url, '["step_ready", "completed"]', 'roles = ["lead"]\n')
    clock = [T0]
    engine = make_engine(demo_home, clock=lambda: clock[0])
    run = engine.start("demo", {"ticket_id": "T-1"}, actor="agent:bot").id
    engine.complete(run, "gather", GOOD, actor="agent:bot")
    engine.skip(run, "extra", "not needed", actor="agent:bot")
    assert webhooks.run_pass(engine) == {"queued": 1, "delivered": 1, "retrying": 0, "dead": 0}
    engine.complete(run, "review", {"approved": True}, actor="human:alice")
    assert webhooks.run_pass(engine)["delivered"] == 1
    assert webhooks.run_pass(engine) == {"queued": 0, "delivered": 0, "retrying": 0, "dead": 0}

    # Only the step for the lead role became a step_ready POST (gather and extra are anyone's).
    assert receiver.events() == [("step_ready", "review"), ("completed", None)]
    headers, body = receiver.calls[0]
    payload = json.loads(body)
    assert payload["run"] == run and payload["roles"] == ["lead"] and payload["hook"] == "ops"
    assert headers["x-tiergate-event"] == "step_ready"
    expected = hmac.new(SECRET.encode(), headers["x-tiergate-timestamp"].encode() + b"." + body, hashlib.sha256)
    assert headers["x-tiergate-signature"] == "sha256=" + expected.hexdigest()
    assert headers["x-tiergate-timestamp"] == str(int(T0.timestamp()))
    with engine.db.read() as conn:
        stored = json.dumps([list(map(str, r)) for r in conn.execute(sa.text("SELECT * FROM webhook_deliveries"))])
    assert SECRET not in stored
    assert _backlog(engine) == {"pending": 0, "dead": 0}


def test_a_failing_receiver_is_retried_later_and_never_blocks_a_step(
        demo_home: HomeBuilder, make_engine: Callable[..., Engine], receiver: Receiver,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TG_TEST_HOOK_SECRET", SECRET)
    _config(demo_home, receiver.url, '["completed", "step_ready"]')
    clock = [T0]
    engine = make_engine(demo_home, clock=lambda: clock[0])
    receiver.status[0] = 503
    run = engine.start("demo", {"ticket_id": "T-2"}, actor="agent:bot").id
    assert webhooks.run_pass(engine) == {"queued": 1, "delivered": 0, "retrying": 1, "dead": 0}
    assert _backlog(engine) == {"pending": 1, "dead": 0}
    assert "tiergate_webhook_backlog{status=\"pending\"} 1" in exposition(engine, clock[0])
    first_ids = [h["x-tiergate-delivery"] for h, _b in receiver.calls]

    # The step goes on while the receiver is down; nothing is due again before the back-off.
    engine.complete(run, "gather", GOOD, actor="agent:bot")
    clock[0] += timedelta(seconds=10)
    assert webhooks.run_pass(engine) == {"queued": 1, "delivered": 0, "retrying": 1, "dead": 0}
    assert len(receiver.calls) == 2     # the new one only: the first waits for its back-off

    receiver.status[0] = 204
    clock[0] += webhooks.backoff(1) + timedelta(seconds=1)
    assert webhooks.run_pass(engine) == {"queued": 0, "delivered": 2, "retrying": 0, "dead": 0}
    assert receiver.events()[2:] == [("step_ready", "gather"), ("step_ready", "extra")]
    retried = [h["x-tiergate-delivery"] for h, _b in receiver.calls[2:]]
    assert set(first_ids) <= set(retried)       # the same delivery ids, sent again
    assert _backlog(engine) == {"pending": 0, "dead": 0}
    assert "tiergate_webhook_backlog{status=\"pending\"} 0" in exposition(engine, clock[0])


def test_an_unreachable_receiver_is_retried_until_dead(
        demo_home: HomeBuilder, make_engine: Callable[..., Engine], monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:   # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("TG_TEST_HOOK_SECRET", SECRET)
    _config(demo_home, f"http://127.0.0.1:{port}/hook", '["step_ready"]')
    clock = [T0]
    engine = make_engine(demo_home, clock=lambda: clock[0])
    engine.start("demo", {"ticket_id": "T-3"}, actor="agent:bot")
    outcomes = []
    for _ in range(webhooks.MAX_ATTEMPTS):
        outcomes.append(webhooks.run_pass(engine))
        clock[0] += webhooks.LONGEST_WAIT + timedelta(seconds=1)
    assert [o["retrying"] for o in outcomes] == [1] * (webhooks.MAX_ATTEMPTS - 1) + [0]
    assert outcomes[-1]["dead"] == 1
    assert _backlog(engine) == {"pending": 0, "dead": 1}
    with engine.db.read() as conn:
        error = conn.execute(sa.text("SELECT last_error FROM webhook_deliveries")).scalar()
    assert "could not reach the receiver" in error and SECRET not in error


def test_the_worker_delivers_and_a_bad_table_is_a_usage_error(
        demo_home: HomeBuilder, make_engine: Callable[..., Engine], receiver: Receiver,
        cli: Callable[..., CLIResult]) -> None:
    _config(demo_home, receiver.url, '["step_ready"]')
    engine = make_engine(demo_home)
    engine.start("demo", {"ticket_id": "T-4"}, actor="agent:bot")
    env = {"TG_TEST_HOOK_SECRET": SECRET}
    result = cli("worker", "--once", "--json", home=demo_home, env=env)
    assert result.returncode == 0, result
    assert result.json["data"]["webhooks"]["delivered"] == 1
    assert receiver.events() == [("step_ready", "gather")]
    assert SECRET not in result.stdout + result.stderr

    missing = cli("worker", "--once", "--json", home=demo_home)    # the secret's variable unset
    assert missing.returncode == 2, missing
    assert missing.json["error"]["code"] == "webhook_invalid"
    assert "TG_TEST_HOOK_SECRET" in missing.json["error"]["message"]
    _config(demo_home, receiver.url, '["step_done"]')
    bad = cli("worker", "--once", "--json", home=demo_home, env=env)
    assert bad.returncode == 2 and "step_done" in bad.json["error"]["message"], bad

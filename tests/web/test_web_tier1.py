"""A Tier 1 (BPMN) user task through the web pages: its form comes from the task's gate, like a checklist step's."""

from __future__ import annotations

from typing import Any, Callable

from support import HomeBuilder
from tier1_helpers import LINEAR, catalog_yaml
from web_support import WebServer, csrf_of


def test_a_bpmn_user_task_is_done_through_its_form(web: WebServer, people: Callable[..., None], make_engine: Any,
                                                   demo_home: HomeBuilder) -> None:
    demo_home.write("processes/linear.bpmn", LINEAR)
    demo_home.write("tiers/catalog.yaml", catalog_yaml(["linear"], ["demo"]))
    people("human:alice")
    engine = make_engine(demo_home)
    run = engine.start("linear", {"ticket": "CHG-1"}, actor="agent:bot").id
    engine.complete(run, "draft", {"note": "Raise the limit."}, actor="agent:bot")
    with web.client() as http:
        web.sign_in(http, "alice")
        assert f'data-run="{run}" data-step="approve"' in http.get("/").text
        page = http.get(f"/runs/{run}/steps/approve")
        assert page.status_code == 200 and 'type="checkbox" id="f-approved" name="approved"' in page.text
        answer = http.post(f"/runs/{run}/steps/approve", data={"csrf": csrf_of(page.text), "approved": "on"})
        assert answer.status_code == 303
    assert engine.status(run).status == "completed"
    approve = next(s for s in engine.status(run).steps if s.id == "approve")
    assert approve.evidence == {"approved": True} and approve.actor == "human:alice"

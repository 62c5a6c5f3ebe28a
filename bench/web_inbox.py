"""The inbox page with many ready steps, rendered server-side, beside `GET /api/inbox` for the same data.

    python bench/web_inbox.py                        # 1,000 ready steps, SQLite in a temporary folder
    python bench/web_inbox.py --steps 1000 --rounds 7 --json
    python bench/web_inbox.py --database-url postgresql+psycopg://postgres@HOST:PORT/EMPTY_DB

- **API (baseline)**: ``GET /api/inbox`` with a person's token: ``Operations.inbox`` as JSON.
- **page**: ``GET /`` signed in as the same person: the same operation (and the list of processes
  to start), grouped by process and rendered as HTML with Jinja.
- **page JSON**: ``GET /.json``: the page's data as the envelope, without the HTML.

Each is fetched ``--rounds`` times, in turns, from one keep-alive connection to ``tiergate serve``
(a subprocess on 127.0.0.1); the figure is the median time of one request. The goal (issue 14):
the page under 10x the API.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from pathlib import Path

import httpx2

from http_steps import tiergate_serve

from tiergate.credentials import Credentials
from tiergate.engine import Engine
from tiergate.passwords import Passwords

CHECKLIST = ("id: bench\ntitle: Bench\nowner: lead\nexpected_minutes: 5\nsteps:\n"
             "  - id: review\n    title: Review the request\n    roles: [lead]\n"
             "    done_when: {type: object, required: [note], properties: {note: {type: string}}}\n")
CATALOG = ("processes:\n  - id: bench\n    title: Bench\n    area: bench\n    owner: lead\n    expected_minutes: 5\n"
           "    facts: {compliance_critical: false, touches_live_systems: false, client_data: false, structured: true}\n")
ROLES = "roles:\n  lead:\n    description: Leads.\n    members: [human:lead]\n"
REPO = Path(__file__).resolve().parents[1]
PASSWORD = "bench password for the lead"


def make_home(root: Path) -> Path:
    for relative, text in (("checklists/bench.yaml", CHECKLIST), ("tiers/catalog.yaml", CATALOG),
                           ("tiers/roles.yaml", ROLES)):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    (root / "decisions").mkdir(parents=True, exist_ok=True)
    (root / "decisions/tier_routing.dmn").write_bytes((REPO / "decisions/tier_routing.dmn").read_bytes())
    return root


def timed(http: httpx2.Client, path: str) -> tuple[float, int]:
    began = time.perf_counter()
    answer = http.get(path)
    elapsed = time.perf_counter() - began
    assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
    return elapsed, len(answer.content)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1000, help="ready steps in the inbox")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--database-url", default=None, help="an empty database (default: SQLite in a temp folder)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        home = make_home(Path(folder) / "home")
        url_db = args.database_url or f"sqlite:///{Path(folder) / 'tiergate.db'}"
        engine = Engine(home=home, database_url=url_db)
        engine.raw_database().upgrade()
        for _ in range(args.steps):
            engine.start("bench", {}, actor="agent:bench")
        token = Credentials(engine).issue_token("human:lead", by="os:bench")["token"]
        Passwords(engine).set("human:lead", PASSWORD, by="os:bench")
        engine.close()
        times: dict[str, list[float]] = {"API": [], "page": [], "page JSON": []}
        sizes: dict[str, int] = {}
        with tiergate_serve(home, url_db) as (url, _server):
            with httpx2.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=600) as api, \
                    httpx2.Client(base_url=url, timeout=600) as browser:
                form = browser.get("/sign-in").text
                csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', form)
                assert csrf is not None
                signed = browser.post("/sign-in", data={"csrf": csrf.group(1), "principal": "lead",
                                                        "password": PASSWORD})
                assert signed.status_code == 303, signed.text[:300]
                count = len(api.get("/api/inbox").json()["data"])
                assert count == args.steps, count
                for _ in range(args.rounds):
                    for name, client, path in (("API", api, "/api/inbox"), ("page", browser, "/"),
                                               ("page JSON", browser, "/.json")):
                        elapsed, sizes[name] = timed(client, path)
                        times[name].append(elapsed)
    baseline = statistics.median(times["API"])
    results = [{"what": name, "steps": args.steps, "median_ms": 1000 * statistics.median(values),
                "ratio": statistics.median(values) / baseline, "bytes": sizes[name]} for name, values in times.items()]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'what':<10} {'steps':>6} {'median ms':>10} {'ratio':>6} {'bytes':>9}")
    for r in results:
        print(f"{r['what']:<10} {r['steps']:>6} {r['median_ms']:>10.1f} {r['ratio']:>6.2f} {r['bytes']:>9}")


if __name__ == "__main__":
    main()

"""The log summary gives the answer that counting the log gives, however and whenever it is folded."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

import pytest
from sqlalchemy import func, select

from support import BACKEND
from test_metrics import GOOD, NOW, T0, Story, metrics_home, tell_the_story
from tiergate import log as execution_log
from tiergate.actors import Actor
from tiergate.engine import Engine
from tiergate.log import LogEvent
from tiergate.metrics import summary
from tiergate.store import runs as store
from tiergate.store.tables import LogEntry, SummaryFold

SCOPES: list[dict[str, Any]] = [{}, {"process": "demo"}, {"process": "notes"}, {"tier": 2}, {"tier": 3}, {"tier": 1},
                                {"process": "demo", "tier": 3}]


def fold_state(engine: Engine) -> tuple[int, list[Any], int, int, int]:
    """(high water, holes, entries folded, log entries, newest entry id)."""
    with engine.db.read() as conn:
        state = SummaryFold.__table__  # type: ignore[attr-defined]
        high, holes, folded = conn.execute(select(state.c.high_water, state.c.holes, state.c.entries)).one()
        log = LogEntry.__table__  # type: ignore[attr-defined]
        count, newest = conn.execute(select(func.count(), func.max(log.c.id))).one()
    return high, holes, folded, count, newest or 0


def assert_same_as_the_log(engine: Engine) -> None:
    for scope in SCOPES:
        assert engine.metrics(**scope) == engine.metrics(**scope, from_log=True), scope


@pytest.fixture
def story(tmp_path: Path, make_engine: Callable[..., Engine]) -> tuple[Engine, Story]:
    clock = [T0]
    engine = make_engine(metrics_home(tmp_path / "home"), clock=lambda: clock[0])
    return engine, tell_the_story(engine, clock)


def test_the_summary_answers_as_the_log_does(story: tuple[Engine, Story]) -> None:
    engine, _ = story
    answer = engine.metrics()
    assert answer["totals"]["runs"] == 9 and answer["totals"]["deviations"]["total"] > 0
    assert_same_as_the_log(engine)
    high, holes, folded, count, newest = fold_state(engine)
    assert (high, holes, folded) == (newest, [], count)


def test_folding_one_entry_at_a_time_changes_nothing(story: tuple[Engine, Story]) -> None:
    engine, _ = story
    whole = engine.metrics()
    _, _, _, count, _ = fold_state(engine)
    assert summary.refold(engine.db, batch=1) == count
    assert engine.metrics() == whole
    assert engine.refold_summary() == count
    assert engine.metrics() == whole


class FoldingEngine(Engine):
    """Asks for metrics after every attempt, so the summary is folded a few entries at a time."""

    folds: list[int]

    def _after(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        finally:
            self.folds.append(summary.fold(self.db))

    def start(self, *args: Any, **kwargs: Any) -> Any:
        return self._after(lambda: super(FoldingEngine, self).start(*args, **kwargs))

    def complete(self, *args: Any, **kwargs: Any) -> Any:
        return self._after(lambda: super(FoldingEngine, self).complete(*args, **kwargs))

    def skip(self, *args: Any, **kwargs: Any) -> Any:
        return self._after(lambda: super(FoldingEngine, self).skip(*args, **kwargs))

    def cancel(self, *args: Any, **kwargs: Any) -> Any:
        return self._after(lambda: super(FoldingEngine, self).cancel(*args, **kwargs))


def test_folding_between_attempts_gives_the_same_answer(tmp_path: Path, db_url: str) -> None:
    clock = [T0]
    engine = FoldingEngine(home=metrics_home(tmp_path / "home").root, database_url=db_url, clock=lambda: clock[0])
    engine.folds = []
    try:
        tell_the_story(engine, clock)
        _, _, folded, count, _ = fold_state(engine)
        # Every attempt was folded right after it (refusals and gate failures write entries too).
        assert folded == count == sum(engine.folds)
        assert len(engine.folds) >= 30 and all(n >= 1 for n in engine.folds)
        assert_same_as_the_log(engine)
    finally:
        engine.close()


def test_a_step_logged_after_metrics_is_counted_next_time(story: tuple[Engine, Story]) -> None:
    engine, s = story
    before = engine.metrics(process="demo")
    s.at(NOW, 1).engine.complete(s.runs["R5"], "extra", {"note": "late"}, actor="agent:bot")
    after = engine.metrics(process="demo")
    step = lambda answer: next(x for x in answer["processes"][0]["steps"] if x["step"] == "extra")  # noqa: E731
    assert step(after)["completed"] == step(before)["completed"] + 1
    assert after == engine.metrics(process="demo", from_log=True)


def test_an_upgraded_database_folds_its_whole_log_on_first_use(story: tuple[Engine, Story]) -> None:
    engine, _ = story
    from_log = engine.metrics(from_log=True)
    _, _, folded, count, _ = fold_state(engine)
    assert folded == 0 and count > 0  # nothing read the summary yet, as after `tiergate db upgrade`
    assert engine.metrics() == from_log


def test_the_cli_reads_the_summary_or_the_log(story: tuple[Engine, Story], cli: Callable[..., Any]) -> None:
    engine, _ = story
    home = engine.home.root
    plain = cli("metrics", "--json", home=home)
    counted = cli("metrics", "--from-log", "--json", home=home)
    refolded = cli("metrics", "--refold", "--json", home=home)
    assert plain.returncode == counted.returncode == refolded.returncode == 0, (plain, counted, refolded)
    # The CLI's clock is the real one: compare all but the time the answer is as of.
    answers = [result.json["data"] for result in (plain, counted, refolded)]
    for answer in answers:
        answer["scope"].pop("as_of")
    assert answers[0] == answers[1] == answers[2]
    assert answers[0]["totals"]["runs"] == 9


@pytest.mark.skipif(BACKEND != "postgresql", reason="SQLite writers hold the write lock: entries appear in id order")
def test_an_entry_committed_after_a_later_one_is_still_folded(story: tuple[Engine, Story]) -> None:
    """PostgreSQL: a transaction holding entry N commits after the one holding N+1, and a fold ran between."""
    engine, s = story
    engine.metrics()
    late_actor = Actor.parse("agent:slow")
    held = threading.Event()
    release = threading.Event()

    def slow_writer(commit: bool) -> None:
        try:
            with engine.db.write() as conn:
                record = store.get_run(conn, s.runs["R6"])
                assert record is not None
                assert execution_log.append_detached(conn, record.head, [LogEvent(
                    "refused", late_actor, step="gather",
                    detail={"attempt": "complete", "reason": "not_ready", "message": "slow"})], NOW)
                held.set()
                release.wait(30)
                if not commit:
                    raise RuntimeError("roll back")
        except RuntimeError:
            pass

    for commit in (True, False):
        thread = threading.Thread(target=slow_writer, args=(commit,))
        thread.start()
        assert held.wait(30)
        # A later entry commits first, and a fold reads it while the slow entry is still open.
        if commit:
            s.at(NOW, 2).engine.complete(s.runs["R5"], "extra", {"note": "while another writer waits"},
                                         actor="agent:bot")
        else:
            s.at(NOW, 3).engine.complete(s.runs["R5"], "review", {"approved": True}, actor="human:bob")
        engine.metrics()
        _, holes, _, _, _ = fold_state(engine)
        assert len(holes) == 1
        release.set()
        thread.join(30)
        held.clear()
        release.clear()
        engine.metrics()
        _, holes, folded, count, _ = fold_state(engine)
        # Committed: folded now. Rolled back: forgotten once no transaction of its time runs.
        assert holes == [] and folded == count
        assert_same_as_the_log(engine)


def test_ranks_read_through_buckets_match_the_log(tmp_path: Path, make_engine: Callable[..., Engine]) -> None:
    """Many runs whose step times share buckets, tie, and whose times to completion sit on the expected time."""
    clock = [T0]
    engine = make_engine(metrics_home(tmp_path / "home"), clock=lambda: clock[0])
    gather_minutes = [1, 1, 1, 2, 2.5, 3, 3, 3.01, 4, 7, 7, 7, 9.5, 12, 30, 61, 61, 125, 0.01, 0]
    for n, minutes in enumerate(gather_minutes * 2):
        start = T0 + timedelta(hours=n)
        clock[0] = start
        run = engine.start("demo", {"ticket_id": f"T-{n}"}, actor="agent:bot").id
        clock[0] = start + timedelta(minutes=minutes)
        engine.complete(run, "gather", GOOD, actor="agent:bot" if n % 3 else "human:alice")
        engine.skip(run, "extra", "not needed", actor="agent:bot" if n % 3 else "human:alice")
        # Completed exactly at the expected 15 minutes, a millisecond over, or well over.
        clock[0] = max(clock[0], start + [timedelta(minutes=15), timedelta(minutes=15, milliseconds=1),
                                          timedelta(minutes=40)][n % 3])
        engine.complete(run, "review", {"approved": True}, actor="human:bob")
    clock[0] = T0 + timedelta(days=3)
    answer = engine.metrics(process="demo")
    assert answer == engine.metrics(process="demo", from_log=True)
    demo = answer["processes"][0]
    gather = next(s for s in demo["steps"] if s["step"] == "gather")
    assert gather["time"]["by_actor"]["agent"]["timed"] == 26 and gather["time"]["by_actor"]["human"]["timed"] == 14
    assert demo["time_to_complete"]["completed"] == 40 and demo["time_to_complete"]["over_expected"] > 0


def test_folds_at_the_same_moment_count_each_entry_once(story: tuple[Engine, Story], db_url: str) -> None:
    """Four engines (as four CLI processes would) fold a log none has folded, at once, a few entries a batch."""
    engine, _ = story
    engines = [Engine(home=engine.home.root, database_url=db_url, clock=engine.clock) for _ in range(4)]
    barrier = threading.Barrier(len(engines))
    folded: list[int] = []
    errors: list[BaseException] = []

    def fold(other: Engine) -> None:
        try:
            barrier.wait(30)
            folded.append(summary.fold(other.db, batch=3))
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=fold, args=(other,)) for other in engines]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        for other in engines:
            other.close()
    assert not errors, errors
    _, _, in_summary, count, _ = fold_state(engine)
    assert sum(folded) == in_summary == count
    assert_same_as_the_log(engine)


def test_a_fold_leaves_the_pooled_connection_durable(story: tuple[Engine, Story]) -> None:
    """The fold commits without waiting for the disk (its data is refolded if lost); writers still wait."""
    engine, _ = story
    assert engine.metrics()["totals"]["runs"] == 9
    with engine.db.write() as conn:
        if BACKEND == "sqlite":
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        else:
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"

"""Beat's import poll: a bounded share of the account's Console calls per tick, the chunks
asked least recently first; a chunk MailUp keeps answering 404 for is unknown, with the
reason; and with a real beat, a slow poll holds up neither the sweeper nor a due schedule —
against the sandbox over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from producers.campaigns import list_schedules, schedule_campaign
from producers.imports import import_recipients, show
from producers.messages import create_message
from sandbox.server import Sandbox
from tests.conftest import Env, Process, wait_for
from tests.helpers import job, run_once
from tests.test_missed_schedules import _due
from tests.test_system import broker, cli, ledger_url, stack
from worker.jobs import imports
from worker.ledger.db import connection
from worker.ledger.models import ImportChunk, utcnow
from worker.settings import get_settings

__all__ = ["broker", "ledger_url", "stack"]  # the stacks of test_system, as fixtures here


def _posted(sandbox: Sandbox, chunks: int) -> str:
    """An import of ``chunks`` one-row chunks, each posted to MailUp, none completing."""
    sandbox.set_import_delay(3600)
    rows = [{"Email": f"user{n}@example.com"} for n in range(chunks)]
    report = import_recipients(rows, list_id=1, chunk_size=1)
    shown = show(report.import_id)
    assert shown is not None
    assert [run_once(c["job_id"]) for c in shown["chunks"]] == ["succeeded"] * chunks
    return report.import_id


def _asked(sandbox: Sandbox) -> list[int]:
    """The MailUp imports the polls asked about, in order (None: a forced answer's)."""
    return [e.get("import_id") for e in sandbox.journal(operation="import_status")]


def test_each_poll_asks_its_share_and_every_chunk_gets_its_turn(sandbox: Sandbox, env: Env) -> None:
    # Given 5 chunks pending, and a poll every 1.6 s: its quarter of 5 calls/s is 2 calls
    env.set(MAILUP_JOBS_IMPORT_POLL=1.6)
    _posted(sandbox, 5)
    assert imports.per_tick(get_settings()) == 2

    # When beat polls three times
    ticks = []
    for _ in range(3):
        before = len(_asked(sandbox))
        imports.poll(get_settings())
        ticks.append(_asked(sandbox)[before:])

    # Then each asks 2, those never asked first, so that all 5 have had a turn
    assert [len(t) for t in ticks] == [2, 2, 2]
    assert len({*ticks[0], *ticks[1]}) == 4
    assert {*ticks[0], *ticks[1], *ticks[2]} == {i["id"] for i in sandbox.imports()}


def test_a_chunk_mailup_does_not_know_is_unknown_after_three_404s_in_a_row(
    sandbox: Sandbox, env: Env
) -> None:
    # Given two posted chunks, MailUp knowing only the second one
    import_id = _posted(sandbox, 2)
    with connection(get_settings().ledger_url) as db:
        db.execute(
            update(ImportChunk)
            .where(ImportChunk.import_id == import_id, ImportChunk.number == 1)
            .values(mailup_import_id=999999)
        )

    # When MailUp answers 404 for the second once, then as usual, it is still asked about
    sandbox.force(404, operation="import_status")
    imports.poll(get_settings())
    imports.poll(get_settings())
    assert _misses(import_id) == {1: 2, 2: 0}  # a good answer ends the 404s' row

    # Then the first, at its third 404 in a row, is unknown, with the reason, and not asked
    # about again
    imports.poll(get_settings())
    shown = show(import_id)
    assert shown is not None and shown["chunks_unknown"] == 1
    unknown = shown["chunks"][0]["unknown_reason"]
    assert "does not know import 999999" in unknown and "3 answers 404" in unknown
    assert shown["chunks"][1]["unknown_reason"] is None
    asked = len(_asked(sandbox))
    imports.poll(get_settings())
    assert _asked(sandbox)[asked:] == [shown["chunks"][1]["mailup_import_id"]]

    # And operators see it
    assert "unknown: MailUp does not know import 999999" in cli(env, "imports", "show", import_id)
    assert "completed, 1 unknown" in cli(env, "imports", "list")


def _misses(import_id: str) -> dict[int, int]:
    with connection(get_settings().ledger_url) as db:
        rows = db.execute(
            select(ImportChunk.number, ImportChunk.misses).where(ImportChunk.import_id == import_id)
        )
        return {row.number: row.misses for row in rows}


def test_a_slow_import_poll_holds_up_neither_the_sweeper_nor_a_due_schedule(
    env: Env, broker: str, sandbox: Sandbox, spawn: Callable[..., Process]
) -> None:
    # Given 12 chunks pending and a MailUp answering in 1 s, so that a poll of its share
    # (10 chunks every 8 s) takes 10 s, and a schedule planned for later
    env.set(
        MAILUP_JOBS_IMPORT_POLL=8,
        MAILUP_JOBS_SCHEDULE_POLL=0.2,
        MAILUP_JOBS_SWEEP_INTERVAL=0.5,
        MAILUP_JOBS_SENDING_POLL=3600,
        MAILUP_JOBS_TRUSTED_SENDER_POLL=3600,
    )
    _posted(sandbox, 12)
    made = create_message(list_id=1, subject="News", html="<p>Hi</p>")
    assert run_once(made) == "succeeded"
    message = job(made)["outcome"]["message_id"]
    schedule = schedule_campaign(message, list_id=1, at=datetime.now(UTC) + timedelta(hours=1))
    sandbox.set_faults(latency_ms=1000)

    # When beat starts and its first import poll is under way, the schedule falls due
    beat = spawn("beat")
    wait_for(lambda: _asked(sandbox), 60, "beat's first import poll asks MailUp")
    sweeps = _sweeps(beat)
    due = utcnow() + timedelta(seconds=1)
    _due(schedule, due)

    # Then it is dispatched at once, and the sweeper keeps sweeping, while the poll goes on
    def dispatched() -> str | None:
        [row] = list_schedules()
        return row["dispatched_at"] if row["state"] == "dispatched" else None

    at = datetime.fromisoformat(wait_for(dispatched, 10, "the due schedule dispatched"))
    assert at - due < timedelta(seconds=3)
    wait_for(lambda: _sweeps(beat) >= sweeps + 2, 10, "two more sweeps")
    assert len(_asked(sandbox)) < 10, "the poll was over: nothing was held up"

    # And the poll asked its share, then the chunks not asked yet at the next tick
    wait_for(lambda: len(_asked(sandbox)) >= 12, 60, "the next poll")
    assert len(set(_asked(sandbox)[:10])) == 10
    assert set(_asked(sandbox)[:12]) == {i["id"] for i in sandbox.imports()}


def _sweeps(beat: Process) -> int:
    return beat.log.read_text().count("beat: sweep: {")

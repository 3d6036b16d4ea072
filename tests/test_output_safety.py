"""Outputs that cannot be turned against their reader (issue 19). The ledger's strings come
from an application's users (campaign codes, a CSV's cells) and from MailUp (codes, error
texts): every CSV the command line writes defuses a formula's start and leaves numbers
numbers; its tables, `jobs show` and a text log line escape control characters — on a
ledger filled by real jobs run against the sandbox, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from producers import send_sms
from producers.cli import cli
from producers.cli.ledger import emit
from sandbox.server import Sandbox
from tests.conftest import Env
from tests.helpers import run_once
from worker.escape import csv_cell, printable
from worker.ledger.db import transaction
from worker.ledger.models import Job
from worker.logs import TEXT_FORMAT, install
from worker.settings import Settings, get_settings

PHONE = "+393350000001"
# What must never reach a terminal or a log line raw ("\n" only ends a line).
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True)
class Hostile:
    value: str
    in_csv: str  # the cell a spreadsheet reads
    on_terminal: str  # in a table, `jobs show` or a log line


HOSTILE = [
    Hostile(
        '=HYPERLINK("http://evil")', '\'=HYPERLINK("http://evil")', '=HYPERLINK("http://evil")'
    ),
    Hostile("+1+1", "'+1+1", "+1+1"),
    Hostile("-2", "'-2", "-2"),
    Hostile("@SUM(1)", "'@SUM(1)", "@SUM(1)"),
    Hostile("\tx", "'\tx", "\\tx"),
    Hostile("\rx", "'\rx", "\\rx"),
    Hostile("\x1b[2J", "\x1b[2J", "\\x1b[2J"),
    Hostile("\u2028", "\u2028", "\\u2028"),
    Hostile("a\nb", "a\nb", "a\\nb"),
]
each_hostile = pytest.mark.parametrize("hostile", HOSTILE, ids=lambda h: ascii(h.value))


# --- the two functions ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        *((h.value, h.on_terminal) for h in HOSTILE),
        ("\x00\x07\x7f", "\\x00\\x07\\x7f"),  # NUL, BEL, DEL
        ("\x85\x9b31m", "\\x85\\x9b31m"),  # C1: next line, CSI
        ("\u2029", "\\u2029"),
        ("\u202egnp.exe \u202a\u202b\u202c\u202d", "\\u202egnp.exe \\u202a\\u202b\\u202c\\u202d"),
        ("\u2066\u2067\u2068\u2069", "\\u2066\\u2067\\u2068\\u2069"),
        ('Café 日本 ✓ C:\\path "q"', 'Café 日本 ✓ C:\\path "q"'),  # text stays text
    ],
    ids=ascii,
)
def test_printable_escapes_every_control_character_and_nothing_else(text: str, shown: str) -> None:
    assert printable(text) == shown


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        *((h.value, h.in_csv) for h in HOSTILE),
        ("a=b", "a=b"),
        ("", ""),
        (-2, -2),
        (-1.5, -1.5),
        (Decimal("-3.25"), Decimal("-3.25")),
        (0, 0),
    ],
    ids=ascii,
)
def test_a_csv_cell_starting_a_formula_is_defused_and_a_number_stays_a_number(
    value: object, cell: object
) -> None:
    assert csv_cell(value) == cell and type(csv_cell(value)) is type(cell)


@dataclass(frozen=True)
class _Row:
    values: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return self.values


def test_a_csv_export_quotes_text_and_writes_numbers_as_numbers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A CR in unquoted text would end the row for a spreadsheet, the rest a row of its own.
    row = {"code": "-2", "sms": -2, "credits": -1.5, "cost": Decimal("0.5"), "note": "x\r=1"}
    emit([_Row({**row, "campaign_code": None})], "csv")
    assert capsys.readouterr().out == (
        '"code","sms","credits","cost","note","campaign_code"\n"\'-2",-2,-1.5,0.5,"x\r=1",""\n'
    )


# --- a ledger holding them ------------------------------------------------------------------


@dataclass(frozen=True)
class Jobs:
    """A hostile value's jobs: an SMS sent with it as campaign code, one MailUp refused with
    it as code and error text, one in doubt that keeps it as code and error text."""

    sent: str
    refused: str
    in_doubt: str


@pytest.fixture
def ledger(env: Env, sandbox: Sandbox, list_secret: str) -> dict[Hostile, Jobs]:
    sandbox.set_limits(sms_per_second=0)
    made = {}
    for hostile in HOSTILE:
        sent = send_sms(list_id=1, recipient=PHONE, content="hi", campaign_code=hostile.value)
        assert run_once(sent) == "succeeded"
        sandbox.force(403, hostile.value, description=hostile.value)
        refused = send_sms(list_id=1, recipient=PHONE, content="hi")
        assert run_once(refused) == "failed"
        sandbox.set_faults(drop_before_rate=1.0)
        doubt = send_sms(list_id=1, recipient=PHONE, content="hi")
        assert run_once(doubt) == "in_doubt"
        sandbox.set_faults()
        # MailUp's words for a call whose answer was lost, as a later check could bring them.
        with transaction(get_settings().ledger_url) as session:
            session.execute(
                update(Job)
                .where(Job.id == doubt)
                .values(last_error_code=hostile.value, last_error=hostile.value)
            )
        made[hostile] = Jobs(sent, refused, doubt)
    return made


def mailup_jobs(*args: str) -> str:
    """`mailup-jobs ARGS`' stdout, the command run in this process."""
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def csv_rows(*args: str) -> list[dict[str, str]]:
    text = mailup_jobs(*args, "--format", "csv")
    return list(csv.DictReader(io.StringIO(text, newline="")))


def table(*args: str) -> list[dict[str, str]]:
    """A table, read back: columns are two or more spaces apart."""
    text = mailup_jobs(*args)
    assert not RAW_CONTROL.search(text), text
    header, *lines = text.removesuffix("\n").split("\n")
    columns = re.split(r"\s{2,}", header)
    return [dict(zip(columns, re.split(r"\s{2,}", line.strip()), strict=True)) for line in lines]


def test_every_csv_export_defuses_formulas_and_keeps_numbers(
    ledger: dict[Hostile, Jobs],
) -> None:
    costs = csv_rows("ledger", "costs", "--by", "campaign")
    assert {row["campaign_code"]: (row["sms"], row["credits"]) for row in costs} == {
        h.in_csv: ("1", "1.0") for h in HOSTILE
    }
    failures = csv_rows("ledger", "failures", "--by", "code")
    assert {row["code"]: (row["failed"], row["in_doubt"]) for row in failures} == {
        h.in_csv: ("1", "1") for h in HOSTILE
    }
    in_doubt = csv_rows("jobs", "in-doubt")
    assert {row["id"]: (row["code"], row["error"], row["attempts"]) for row in in_doubt} == {
        jobs.in_doubt: (h.in_csv, h.in_csv, "1") for h, jobs in ledger.items()
    }
    sent = {row["job_id"]: row for row in csv_rows("ledger", "recipient", PHONE)}
    for hostile, jobs in ledger.items():
        sms = sent[jobs.sent]
        assert (sms["campaign_code"], sms["cost"]) == (hostile.in_csv, "1.0")
        assert sms["delivery_id"].isdigit()
        assert sent[jobs.refused]["code"] == sent[jobs.in_doubt]["code"] == hostile.in_csv


def test_tables_show_control_characters_escaped(ledger: dict[Hostile, Jobs]) -> None:
    costs = table("ledger", "costs", "--by", "campaign")
    assert {row["campaign_code"]: (row["sms"], row["credits"]) for row in costs} == {
        h.on_terminal: ("1", "1.0") for h in HOSTILE
    }
    in_doubt = table("jobs", "in-doubt")
    assert {row["id"]: (row["code"], row["error"]) for row in in_doubt} == {
        jobs.in_doubt: (h.on_terminal, h.on_terminal) for h, jobs in ledger.items()
    }


def test_jobs_show_escapes_campaign_codes_and_mailup_error_texts(
    ledger: dict[Hostile, Jobs],
) -> None:
    for hostile, jobs in ledger.items():
        shown = hostile.on_terminal
        sent, refused, in_doubt = (
            re.sub(r" \d+ms ", " Nms ", mailup_jobs("jobs", "show", job_id))
            for job_id in (jobs.sent, jobs.refused, jobs.in_doubt)
        )
        assert not RAW_CONTROL.search(sent + refused + in_doubt)
        assert f"\n  campaign_code: {shown}\n" in sent
        error = f"send SMS: HTTP 403 code {shown}: {shown}"
        assert refused.split("\n")[1:3] == [
            f"  last error [{shown}]: {error}",
            f"  attempt 1: permanent http=403 code={shown} Nms {error}",
        ]
        assert in_doubt.split("\n")[1] == f"  last error [{shown}]: {shown}"


def test_the_import_s_rejected_file_defuses_its_cells_and_stderr_escapes_them(
    env: Env, list_secret: str, tmp_path: Path
) -> None:
    people = tmp_path / "people.csv"
    with people.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["Email", "Name", "=cmd"])
        writer.writerow(["ada@example.com", "Ada", "1"])
        writer.writerows([h.value, h.value, h.value] for h in HOSTILE)

    result = CliRunner().invoke(cli, ["import", str(people), "--list-id", "1"])

    assert result.exit_code == 0, (result.output, result.exception)
    assert not RAW_CONTROL.search(result.stderr)
    assert len(result.stderr.splitlines()) == len(HOSTILE) + 1  # and "… row(s) refused"
    with (tmp_path / "people.rejected.csv").open(newline="", encoding="utf-8") as file:
        header, *rows = csv.reader(file)
    assert header == ["line", "reason", "Email", "Name", "'=cmd"]
    assert [row[2:] for row in rows] == [[h.in_csv] * 3 for h in HOSTILE]
    assert all(row[0].isdigit() for row in rows)  # the line number, not "'…"


# --- a log line -----------------------------------------------------------------------------


def logged(log_format: str, emit: Callable[[logging.Logger], None]) -> str:
    """What ``emit`` logs through a handler set up as worker and beat set theirs."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    logger = logging.getLogger(f"test.{uuid.uuid4().hex}")
    logger.addHandler(handler)
    logger.propagate = False
    install(logger, Settings(MAILUP_JOBS_LOG_FORMAT=log_format))
    emit(logger)
    return stream.getvalue()


PREFIX = r"\[[0-9: ,-]+: (?:WARNING|ERROR)/MainProcess\] "


@each_hostile
def test_a_text_log_line_escapes_its_message_and_arguments(hostile: Hostile) -> None:
    text = logged("text", lambda log: log.warning("job %s: %s", hostile.value, hostile.value))
    shown = hostile.on_terminal
    assert re.fullmatch(PREFIX + re.escape(f"job {shown}: {shown}") + "\n", text), text


@each_hostile
def test_a_text_log_escapes_exception_texts_and_keeps_the_traceback_s_lines(
    hostile: Hostile,
) -> None:
    def fail(log: logging.Logger) -> None:
        try:
            try:
                raise ValueError(hostile.value)
            except ValueError as exc:
                raise RuntimeError(hostile.value) from exc
        except RuntimeError:
            log.exception("job %s: unexpected error", hostile.value)

    first, *trace = logged("text", fail).removesuffix("\n").split("\n")
    shown = hostile.on_terminal
    assert re.fullmatch(PREFIX + re.escape(f"job {shown}: unexpected error"), first)
    assert not RAW_CONTROL.search("\n".join(trace))
    assert trace.count("Traceback (most recent call last):") == 2
    assert sum(line.startswith('  File "') for line in trace) == 2  # and their code:
    assert "    raise RuntimeError(hostile.value) from exc" in trace
    assert f"ValueError: {shown}" in trace and trace[-1] == f"RuntimeError: {shown}"
    assert "The above exception was the direct cause of the following exception:" in trace


@each_hostile
def test_a_json_log_line_keeps_the_text_as_it_is(hostile: Hostile) -> None:
    line = logged("json", lambda log: log.warning("job %s", hostile.value))
    assert line.count("\n") == 1 and json.loads(line)["message"] == f"job {hostile.value}"

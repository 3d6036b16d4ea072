"""Recipient imports: rows checked at the door, chunk jobs, MailUp's progress polled, the
totals in `imports show`; from Python and from the CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from producers import InvalidJob
from producers.imports import import_csv, import_recipients, show
from sandbox.server import Sandbox
from tests.conftest import Env
from tests.helpers import job, run_once
from worker.jobs import imports
from worker.settings import get_settings

ROWS = [
    {"Email": "ada@example.com", "Name": "Ada", "City": "Cremona"},
    {"Email": "not-an-address", "Name": "Bad"},
    {"EMAIL": "bob@example.com", "mobilenumber": "3350000002", "MobilePrefix": "+39"},
    {"Email": "", "Name": "No address"},
    {"Email": "cy@example.com", "MobileNumber": "33x"},
    {"Email": "dee@example.com"},
]


def _run_chunks(import_id: str) -> list[str | None]:
    report = show(import_id)
    assert report is not None
    return [run_once(chunk["job_id"]) for chunk in report["chunks"]]


def test_rows_are_checked_at_the_door_and_queued_in_chunks(sandbox: Sandbox, env: Env) -> None:
    refused: list[tuple[int, str]] = []
    report = import_recipients(
        ROWS,
        list_id=1,
        fields={"City": 3},
        chunk_size=2,
        on_reject=lambda line, reason, row: refused.append((line, reason)),
    )

    # Bad rows are refused with their number and reason, never sent; good ones go on
    assert [line for line, _ in report.rejected] == [2, 4, 5] == [line for line, _ in refused]
    assert "not a valid address" in report.rejected[0][1]
    assert report.rejected[1][1] == "email: missing"
    assert report.rows_read == 6 and report.rows_queued == 3 and report.chunks == 2

    assert _run_chunks(report.import_id) == ["succeeded", "succeeded"]
    for imported in sandbox.imports():
        sandbox.complete_import(imported["id"])
    assert imports.poll(get_settings()) == 2

    on_list = {r["email"]: r for r in sandbox.recipients(1)}
    assert set(on_list) == {"ada@example.com", "bob@example.com", "dee@example.com"}
    assert on_list["ada@example.com"]["fields"] == {"3": "Cremona"}  # City → field 3
    assert on_list["bob@example.com"]["mobile_number"] == "3350000002"
    shown = show(report.import_id)
    assert shown is not None
    assert shown["totals"]["imported"] == 3 and shown["chunks_completed"] == 2
    assert [r["line"] for r in shown["rejected"]] == [2, 4, 5]


def test_an_import_into_a_group_as_optout_unsubscribes_them(sandbox: Sandbox, env: Env) -> None:
    [group] = [g for g in sandbox.groups(1) if g["name"] == "TEST"]
    sandbox.add_recipient(1, "ada@example.com")
    report = import_recipients(
        [{"Email": "ada@example.com"}], list_id=1, group_id=group["id"], optout=True
    )

    assert _run_chunks(report.import_id) == ["succeeded"]
    sandbox.complete_import(sandbox.imports()[0]["id"])
    imports.poll(get_settings())
    assert {r["email"]: r["status"] for r in sandbox.recipients(1)} == {
        "ada@example.com": "unsubscribed"
    }


def test_a_chunk_whose_answer_is_lost_is_in_doubt_not_sent_twice(
    sandbox: Sandbox, env: Env
) -> None:
    sandbox.force(502, operation="recipients_import", after_processing=True)
    report = import_recipients([{"Email": "ada@example.com"}], list_id=1)

    assert _run_chunks(report.import_id) == ["in_doubt"]
    assert len(sandbox.imports()) == 1


def test_bad_import_options_are_refused_before_anything_is_written(
    env: Env, tmp_path: Path
) -> None:
    with pytest.raises(InvalidJob) as refused:
        import_recipients(ROWS, list_id=0)
    assert refused.value.field == "list_id"
    with pytest.raises(InvalidJob) as refused:
        import_recipients(ROWS, list_id=1, chunk_size=0)
    assert refused.value.field == "chunk_size"
    no_email = tmp_path / "names.csv"
    no_email.write_text("Name\nAda\n")
    with pytest.raises(InvalidJob) as refused:
        import_csv(no_email, list_id=1)
    assert refused.value.field == "file"
    assert imports.listing(get_settings()) == []


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=["Email", "Name", "MobileNumber", "City"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_the_cli_prints_the_import_id_alone_and_keeps_the_refused_rows(
    sandbox: Sandbox, env: Env, tmp_path: Path
) -> None:
    source = write_csv(
        tmp_path / "people.csv",
        [
            {"Email": "ada@example.com", "Name": "Ada", "City": "Cremona"},
            {"Email": "nobody", "Name": "Bad", "City": ""},
            {"Email": "bob@example.com", "Name": "Bob", "City": "Milano"},
        ],
    )
    result = subprocess.run(
        [sys.executable, "-m", "producers.cli", "import", str(source), "--list-id", "1",
         "--field", "City=3"],
        env={**os.environ, **env.values},
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    import_id = result.stdout.strip()
    shown = show(import_id)
    assert shown is not None and shown["rows_read"] == 3 and shown["rows_rejected"] == 1
    assert "line 3: email: 'nobody' is not a valid address" in result.stderr
    assert "rows read" not in result.stderr  # no progress bar when stderr is not a terminal
    with (tmp_path / "people.rejected.csv").open() as stream:
        rejected = list(csv.DictReader(stream))
    assert [(r["line"], r["Email"]) for r in rejected] == [("3", "nobody")]


def test_the_cli_shows_progress_on_a_terminal(env: Env, tmp_path: Path) -> None:
    source = write_csv(tmp_path / "many.csv", [{"Email": f"u{n}@example.com"} for n in range(3000)])
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "producers.cli", "import", str(source), "--list-id", "1"],
        env={**os.environ, **env.values},
        stdout=subprocess.PIPE,
        stderr=terminal,
    )
    out, _ = process.communicate(timeout=60)
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)

    assert process.returncode == 0
    assert b"many.csv: 3,000 rows read" in shown and b"3,000 queued" in shown
    assert len(out.decode().strip()) == 36  # the import id alone on stdout


def test_jobs_show_describes_a_chunk(sandbox: Sandbox, env: Env) -> None:
    report = import_recipients([{"Email": "ada@example.com"}], list_id=1)
    [chunk] = show(report.import_id)["chunks"]  # type: ignore[index]
    run_once(chunk["job_id"])

    outcome = job(chunk["job_id"])["outcome"]
    assert outcome["import_id"] == report.import_id and outcome["rows"] == 1
    assert outcome["mailup_import_id"] == sandbox.imports()[0]["id"]

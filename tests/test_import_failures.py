"""An import that meets a line it cannot read (a byte that is not UTF-8, a field over the
csv module's limit) stops there in one line, exit 1: the rows before it are queued and its
record says so, failed with the line and reason; nothing after it is queued. A NUL is a
refused row. Through the CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from producers.imports import ImportStopped, import_csv, import_recipients, show
from tests.conftest import Env
from tests.helpers import job_count, mailup_jobs
from worker.jobs import imports
from worker.ledger.db import connection
from worker.ledger.models import ImportChunk
from worker.settings import get_settings


def _write(path: Path, *lines: bytes) -> Path:
    path.write_bytes(b"Email,Name\n" + b"".join(line + b"\n" for line in lines))
    return path


def _good(names: range) -> list[bytes]:
    return [f"u{n}@example.com,U{n}".encode() for n in names]


def _queued(import_id: str) -> list[str]:
    """The addresses staged in the import's chunks, in order."""
    with connection(get_settings().ledger_url) as db:
        bodies = db.scalars(
            select(ImportChunk.body)
            .where(ImportChunk.import_id == import_id)
            .order_by(ImportChunk.number)
        ).all()
    return [row["Email"] for body in bodies for row in json.loads(body or b"[]")]


def test_a_byte_not_utf8_stops_the_import_at_its_line_the_rows_before_it_queued(
    env: Env, tmp_path: Path
) -> None:
    # Given 2,500 good rows, then (line 2502) a Latin-1 name, then more good rows
    source = _write(
        tmp_path / "people.csv",
        *_good(range(2500)),
        b"jose@example.com,Jos\xe9",
        *_good(range(2500, 2510)),
    )

    # When it is imported 1,000 rows a chunk
    result = mailup_jobs(env, "import", str(source), "--list-id", "1", "--chunk-size", "1000")

    # Then it stops in one line naming the line and the byte, exit 1, no traceback
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "import stopped at line 2502: not UTF-8 (byte 0xe9); of the 2,500 row(s) before it, "
        "2,500 queued in 3 chunk(s), 0 refused"
    ]
    # and its record says what was queued before it, and where and why it stopped
    import_id = result.stdout.strip()
    shown = show(import_id)
    assert shown is not None
    assert shown["state"] == "failed" and shown["queued_at"] is None
    assert (shown["failed_line"], shown["failed_reason"]) == (2502, "not UTF-8 (byte 0xe9)")
    assert (shown["rows_read"], shown["rows_rejected"], len(shown["chunks"])) == (2500, 0, 3)
    # and every row before the bad line is queued, none from it on
    assert job_count() == 3
    assert _queued(import_id) == [f"u{n}@example.com" for n in range(2500)]
    listed = mailup_jobs(env, "imports", "list")
    assert listed.returncode == 0
    assert "rows 2500 (refused 0)" in listed.stdout
    assert "failed at line 2502: not UTF-8 (byte 0xe9)" in listed.stdout


def test_a_field_over_the_csv_limit_stops_the_import_at_its_line(env: Env, tmp_path: Path) -> None:
    # Given three good rows, one with a 200 KiB name (line 5), then another good row
    source = _write(
        tmp_path / "people.csv",
        *_good(range(3)),
        b"big@example.com," + b"x" * 200 * 1024,
        *_good(range(3, 4)),
    )

    # When it is imported 2 rows a chunk
    result = mailup_jobs(env, "import", str(source), "--list-id", "1", "--chunk-size", "2")

    # Then it stops at that line, the three rows before it queued in two chunks
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "import stopped at line 5: field larger than field limit (131072); of the 3 row(s) "
        "before it, 3 queued in 2 chunk(s), 0 refused"
    ]
    import_id = result.stdout.strip()
    assert job_count() == 2
    assert _queued(import_id) == ["u0@example.com", "u1@example.com", "u2@example.com"]
    shown = mailup_jobs(env, "imports", "show", import_id)
    assert shown.returncode == 0
    assert "  failed at line 5: field larger than field limit (131072)" in shown.stdout
    assert "rows read 3, refused 0" in shown.stdout


def test_a_nul_in_a_field_is_a_refused_row_naming_its_line(env: Env, tmp_path: Path) -> None:
    # Given a row whose name holds a NUL (line 3) between two good ones
    source = _write(
        tmp_path / "people.csv", *_good(range(1)), b"nul@example.com,A\0B", *_good(range(1, 2))
    )

    # When it is imported
    result = mailup_jobs(env, "import", str(source), "--list-id", "1")

    # Then that row is refused, named by its line, and the others are queued
    assert result.returncode == 0 and "Traceback" not in result.stderr
    assert "line 3: name: holds a NUL byte" in result.stderr.splitlines()
    shown = show(result.stdout.strip())
    assert shown is not None
    assert shown["state"] == "queued" and shown["failed_reason"] is None
    assert (shown["rows_read"], shown["rows_rejected"], len(shown["chunks"])) == (3, 1, 1)
    assert shown["rejected"] == [
        {"line": 3, "reason": "name: holds a NUL byte", "row": "nul@example.com,A\\0B"}
    ]
    assert _queued(shown["id"]) == ["u0@example.com", "u1@example.com"]


def test_a_header_that_is_not_utf8_refuses_the_file_before_anything_is_written(
    env: Env, tmp_path: Path
) -> None:
    source = tmp_path / "people.csv"
    source.write_bytes("Email,Name\nada@example.com,Ada\n".encode("utf-16"))

    result = mailup_jobs(env, "import", str(source), "--list-id", "1")

    assert result.returncode == 2
    assert result.stderr.splitlines() == ["invalid file: people.csv line 1: not UTF-8 (byte 0xff)"]
    assert imports.listing(get_settings()) == [] and job_count() == 0


def test_python_callers_get_import_stopped_once_the_record_is_written(
    env: Env, tmp_path: Path
) -> None:
    # A CSV file: the line, the import's id and what was queued before it
    source = _write(tmp_path / "people.csv", *_good(range(2)), b"x@example.com,\xff")
    with pytest.raises(ImportStopped) as stopped:
        import_csv(source, list_id=1)
    assert (stopped.value.line, stopped.value.reason) == (4, "not UTF-8 (byte 0xff)")
    assert stopped.value.report.rows_queued == 2
    shown = show(stopped.value.import_id)
    assert shown is not None and shown["state"] == "failed" and shown["failed_line"] == 4

    # Rows from Python: the caller's own error stops the import at the row it could not give
    def rows() -> Iterator[dict[str, str]]:
        yield {"Email": "ada@example.com"}
        raise OSError("the export went away")

    with pytest.raises(ImportStopped) as stopped:
        import_recipients(rows(), list_id=1)
    assert stopped.value.line == 2 and isinstance(stopped.value.__cause__, OSError)
    assert stopped.value.reason == "OSError: the export went away"
    shown = show(stopped.value.import_id)
    assert shown is not None
    assert (shown["state"], shown["rows_read"], len(shown["chunks"])) == ("failed", 1, 1)

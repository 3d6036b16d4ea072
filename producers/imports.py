"""Importing recipients: rows from any iterable, or a CSV file read as a stream, checked
row by row at the door, queued in chunk jobs as they fill. Nothing is held but one chunk.

    from producers.imports import import_recipients
    report = import_recipients(rows, list_id=1, group_id=7)   # rows: mappings of columns
    report.import_id, report.rows_queued, report.rejected

Columns ``Email``, ``Name``, ``MobileNumber`` and ``MobilePrefix`` are known by name (in any
case); others go to MailUp recipient fields through ``fields={"City": 3}``.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from producers.enqueue import enqueue, validate
from producers.errors import InvalidJob
from producers.lists import check_group
from worker.jobs import imports
from worker.jobs.imports import COLUMNS, MAX_CHUNK, ImportChunkJob
from worker.jobs.recipients import Target
from worker.mailup.recipients import Audience
from worker.settings import DEFAULT_ACCOUNT, get_settings

# Called as the import goes: (rows read, rows queued, rows rejected).
Progress = Callable[[int, int, int], None]
# Called for each refused row: (line, reason, the row).
Reject = Callable[[int, str, Mapping[str, str]], None]


@dataclass
class ImportReport:
    import_id: str
    rows_read: int = 0
    rows_queued: int = 0
    chunks: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)


def import_recipients(
    rows: Iterable[Mapping[str, Any]],
    *,
    list_id: int,
    group_id: int | None = None,
    confirm_email: bool = False,
    optout: bool = False,
    fields: Mapping[str, int] | None = None,
    chunk_size: int = 1000,
    account: str = DEFAULT_ACCOUNT,
    source: str = "python",
    on_progress: Progress | None = None,
    on_reject: Reject | None = None,
) -> ImportReport:
    """Import ``rows`` into a list (or one of its groups). ``optout`` imports them as
    unsubscribed (bulk unsubscribe); ``confirm_email`` leaves them pending until they
    confirm. Rows are numbered from 1 in the order given (a CSV file: its line numbers)."""
    return _import(
        ((n, row) for n, row in enumerate(rows, start=1)),
        list_id=list_id,
        group_id=group_id,
        confirm_email=confirm_email,
        optout=optout,
        fields=fields,
        chunk_size=chunk_size,
        account=account,
        source=source,
        on_progress=on_progress,
        on_reject=on_reject,
    )


def import_csv(path: Path, **options: Any) -> ImportReport:
    """Import a CSV file (a header row first), streamed. Options: see ``import_recipients``."""
    with path.open(newline="", encoding="utf-8-sig") as stream:
        reader = csv.DictReader(stream)
        if not reader.fieldnames or not any(
            c.strip().lower() == "email" for c in reader.fieldnames
        ):
            raise InvalidJob({"file": f"{path.name} has no Email column in its header"})
        numbered = ((reader.line_num, row) for row in reader)
        return _import(numbered, source=str(path), **options)


def _import(
    rows: Iterator[tuple[int, Mapping[str, Any]]],
    *,
    list_id: int,
    group_id: int | None = None,
    confirm_email: bool = False,
    optout: bool = False,
    fields: Mapping[str, int] | None = None,
    chunk_size: int = 1000,
    account: str = DEFAULT_ACCOUNT,
    source: str,
    on_progress: Progress | None = None,
    on_reject: Reject | None = None,
) -> ImportReport:
    settings = get_settings()
    target = validate(Target, list_id=list_id, group_id=group_id)
    if not 1 <= chunk_size <= MAX_CHUNK:
        raise InvalidJob({"chunk_size": f"must be from 1 to {MAX_CHUNK}"})
    if group_id is not None:
        check_group(account, list_id, group_id)
    mapped = {column.strip().lower(): int(field_id) for column, field_id in (fields or {}).items()}
    clash = sorted(set(mapped) & set(COLUMNS))
    if clash:
        raise InvalidJob({"fields": f"{clash} are recipient columns, not fields"})
    settings.account(account)  # an unknown account is refused before anything is written
    import_id = imports.begin(
        settings,
        account,
        audience=Audience(target.list_id, target.group_id),
        source=source,
        confirm_email=confirm_email,
        optout=optout,
        chunk_size=chunk_size,
    )
    report = ImportReport(import_id)
    batch: list[dict[str, Any]] = []
    refused: list[tuple[int, str, str]] = []

    def queue_batch() -> None:
        report.chunks += 1
        payload = ImportChunkJob(
            import_id=import_id,
            number=report.chunks,
            list_id=target.list_id,
            group_id=target.group_id,
            confirm_email=confirm_email,
            optout=optout,
        )
        staged = imports.chunk(batch)
        enqueue("import_chunk", payload, account, extras=staged)
        report.rows_queued += len(batch)
        batch.clear()

    for line, row in rows:
        report.rows_read += 1
        values = {str(k).strip().lower(): str(v or "") for k, v in row.items() if k is not None}
        checked = imports.check_row(values, mapped)
        if isinstance(checked, str):
            report.rejected.append((line, checked))
            refused.append((line, checked, ",".join(str(v or "") for v in row.values())))
            if on_reject:
                on_reject(line, checked, row)
        else:
            batch.append(checked)
            if len(batch) == chunk_size:
                queue_batch()
        if on_progress and report.rows_read % 1000 == 0:
            on_progress(report.rows_read, report.rows_queued, len(report.rejected))
    if batch:
        queue_batch()
    imports.refuse(settings, import_id, refused)
    imports.finish(
        settings,
        import_id,
        rows_read=report.rows_read,
        rejected=len(report.rejected),
        chunks=report.chunks,
    )
    if on_progress:
        on_progress(report.rows_read, report.rows_queued, len(report.rejected))
    return report


def show(import_id: str) -> dict[str, Any] | None:
    """An import: rows read and refused, each chunk with MailUp's counters, the totals."""
    return imports.show(get_settings(), import_id)


def listing(*, limit: int = 50) -> list[dict[str, Any]]:
    return imports.listing(get_settings(), limit=limit)

"""Importing recipients: rows from any iterable, or a CSV file read as a stream, checked
row by row at the door, queued in chunk jobs as they fill. Nothing is held but one chunk.

    from producers.imports import import_recipients
    report = import_recipients(rows, list_id=1, group_id=7)   # rows: mappings of columns
    report.import_id, report.rows_queued, report.rejected

A row that cannot be read (a byte that is not UTF-8, a field over ``csv.field_size_limit``,
an error from the caller's iterable) stops the import there: the rows before it are queued,
the import's record says where and why it stopped, and ``ImportStopped`` is raised.

Columns ``Email``, ``Name``, ``MobileNumber`` and ``MobilePrefix`` are known by name (in any
case); others go to MailUp recipient fields through ``fields={"City": 3}``.
"""

from __future__ import annotations

import csv
import re
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
# A byte that is not UTF-8, as the file is decoded (``surrogateescape``: a lone surrogate).
_NOT_UTF8 = re.compile("[\udc80-\udcff]")


@dataclass
class ImportReport:
    import_id: str
    rows_read: int = 0
    rows_queued: int = 0
    chunks: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)


class ImportStopped(Exception):
    """The import stopped at ``line``, which could not be read: ``report`` counts the rows
    before it (their good rows are queued), nothing from it on is. The import's record is
    ``failed`` with the line and reason."""

    def __init__(self, report: ImportReport, line: int, reason: str) -> None:
        self.report = report
        self.line = line
        self.reason = reason
        super().__init__(
            f"import stopped at line {line}: {reason}; of the {report.rows_read:,} row(s) "
            f"before it, {report.rows_queued:,} queued in {report.chunks} chunk(s), "
            f"{len(report.rejected):,} refused"
        )

    @property
    def import_id(self) -> str:
        return self.report.import_id


class _Unreadable(Exception):
    """A row the source cannot give: where, and why."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


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
    confirm. Rows are numbered from 1 in the order given (a CSV file: its line numbers).
    Raises ``ImportStopped`` (the caller's error its cause) if ``rows`` raises."""
    return _import(
        _numbered(iter(rows)),  # iter() now: a non-iterable is refused before anything is written
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


def _numbered(rows: Iterator[Mapping[str, Any]]) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """The caller's rows numbered from 1; an error from their iterable stops the import."""
    line = 0
    while True:
        line += 1
        try:
            row = next(rows)
        except StopIteration:
            return
        except Exception as exc:
            raise _Unreadable(line, f"{type(exc).__name__}: {exc}") from exc
        yield line, row


def import_csv(path: Path, **options: Any) -> ImportReport:
    """Import a CSV file (a header row first, UTF-8), streamed. Options: see
    ``import_recipients``; raises ``ImportStopped`` at a line that cannot be read."""
    # Bad bytes are found line by line (a strict decoder fails a whole buffer ahead, at no
    # line), so the rows before the first one are read and queued.
    with path.open(newline="", encoding="utf-8-sig", errors="surrogateescape") as stream:
        reader = csv.DictReader(_utf8_lines(stream))
        _check_header(reader, path)
        return _import(_csv_rows(reader), source=str(path), **options)


def _utf8_lines(stream: Iterable[str]) -> Iterator[str]:
    for line, text in enumerate(stream, start=1):
        bad = _NOT_UTF8.search(text)
        if bad:
            raise _Unreadable(line, f"not UTF-8 (byte {ord(bad.group()) - 0xDC00:#04x})")
        yield text


def _check_header(reader: csv.DictReader[str], path: Path) -> None:
    """A header that cannot be read, or has no Email column, refuses the file: nothing is
    written."""
    try:
        columns = reader.fieldnames or []
    except csv.Error as exc:
        raise InvalidJob({"file": f"{path.name} line {reader.line_num}: {exc}"}) from None
    except _Unreadable as exc:
        raise InvalidJob({"file": f"{path.name} {exc}"}) from None
    if not any(c.strip().lower() == "email" for c in columns):
        raise InvalidJob({"file": f"{path.name} has no Email column in its header"})


def _csv_rows(reader: csv.DictReader[str]) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """Each row with its (last) line number; one the csv module refuses (a field over its
    limit) stops the import at the line it starts on."""
    start = reader.line_num + 1
    try:
        for row in reader:
            yield reader.line_num, row
            start = reader.line_num + 1
    except csv.Error as exc:
        raise _Unreadable(start, str(exc)) from None


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
    stopped: _Unreadable | None = None

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

    try:
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
    except _Unreadable as exc:
        stopped = exc
    # The rows before a line that cannot be read are queued too: the import resumes there.
    if batch:
        queue_batch()
    imports.refuse(settings, import_id, refused)
    imports.finish(
        settings,
        import_id,
        rows_read=report.rows_read,
        rejected=len(report.rejected),
        chunks=report.chunks,
        failed=(stopped.line, stopped.reason) if stopped else None,
    )
    if on_progress:
        on_progress(report.rows_read, report.rows_queued, len(report.rejected))
    if stopped:
        raise ImportStopped(report, stopped.line, stopped.reason) from stopped.__cause__
    return report


def show(import_id: str) -> dict[str, Any] | None:
    """An import: rows read and refused, each chunk with MailUp's counters, the totals."""
    return imports.show(get_settings(), import_id)


def listing(*, limit: int = 50) -> list[dict[str, Any]]:
    return imports.listing(get_settings(), limit=limit)

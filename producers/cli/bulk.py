"""`mailup-jobs enqueue sms --from-csv FILE`: one SMS per row, checked in full before any
is queued, then queued in chunks with a progress line; the job ids on stdout, one a line."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from producers.cli.progress import Progress
from producers.cli.submit import OPTION_FOR_FIELD

# Rows queued per transaction: a failure mid-file leaves whole chunks queued, and says so.
CHUNK = 1000
# Columns that are send_sms arguments; every other column is a merge tag.
COLUMNS = {"to", "content", "template_id", "campaign_code", "sender", "idempotency_key"}


def sms_from_csv(path: Path, *, dynamic_fields: dict[str, str], **options: Any) -> None:
    from producers.bulk import BULK_PRIORITY, check, send_sms_many
    from producers.enqueue import send_sms
    from producers.errors import InvalidJob

    if click.get_current_context().get_parameter_source("priority") == ParameterSource.DEFAULT:
        options["priority"] = BULK_PRIORITY  # behind the transactional work
    given = {name: value for name, value in options.items() if value not in (None, False)}
    given.pop("recipient", None)
    items = list(_items(path, given, dynamic_fields))
    try:
        check(send_sms, items)
    except InvalidJob as exc:
        for field, reason in exc.errors.items():
            number, _, name = field.partition("].")
            line = int(number.removeprefix("items[").rstrip("]")) + 2  # after the header
            option = OPTION_FOR_FIELD.get(name.split(".")[0], name) if name else "row"
            click.echo(f"{path}:{line}: invalid {_column(option)}: {reason}", err=True)
        sys.exit(2)
    progress = Progress("SMS")
    queued = 0
    for start in range(0, len(items), CHUNK):
        for job_id in send_sms_many(items[start : start + CHUNK]):
            click.echo(job_id)
        queued += len(items[start : start + CHUNK])
        progress(len(items), queued, 0)
    progress.done()


def _items(path: Path, given: dict[str, Any], fields: dict[str, str]) -> Iterator[dict[str, Any]]:
    with path.open(newline="", encoding="utf-8-sig") as file:
        for row in csv.DictReader(file):
            item = {**given, "dynamic_fields": dict(fields)}
            for column, value in row.items():
                if column is None or value in (None, ""):
                    continue
                if column == "to":
                    item["recipient"] = value
                elif column == "template_id":
                    item[column] = int(value) if value.isdigit() else value
                elif column in COLUMNS:
                    item[column] = value
                else:
                    item["dynamic_fields"][column] = value
            yield item


def _column(option: str) -> str:
    """The CSV column for a field's option name (``--to`` → ``to``)."""
    return option.removeprefix("--").replace("-", "_")

"""`mailup-jobs enqueue …`: queue a job, print its id."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from producers.cli.submit import EMAIL_OPTIONS, common, fields_option, submit


@click.group()
def enqueue() -> None:
    """Queue a job; prints the job id alone on stdout."""


@enqueue.command("sms")
@click.option("--list-id", required=True, type=int)
@click.option("--to", "recipient", help="International number: +39… or 0039….")
@click.option("--content", help="The text (MailUp truncates it past 670 characters).")
@click.option("--template-id", type=int, help="A MailUp SMS template instead of --content.")
@click.option("--campaign-code")
@click.option("--field", "fields", multiple=True, help="A merge tag: NAME=VALUE (repeatable).")
@click.option("--sender", help="At most 11 letters and digits.")
@click.option("--unicode", "is_unicode", is_flag=True, help="The text has non-Latin letters.")
@click.option(
    "--from-csv",
    "csv_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Queue one SMS per row (bulk priority unless --priority): a header row naming "
    "`to` and optionally content, template_id, campaign_code, sender, idempotency_key; "
    "other columns are merge tags. Options given apply to every row.",
)
@common
def enqueue_sms(fields: tuple[str, ...], csv_file: Path | None, **kwargs: Any) -> None:
    """Queue one transactional SMS (or one per row of --from-csv)."""
    from producers.enqueue import send_sms

    if csv_file is not None:
        from producers.cli.bulk import sms_from_csv

        sms_from_csv(csv_file, dynamic_fields=fields_option(fields), **kwargs)
        return
    if not kwargs["recipient"]:
        click.echo("invalid --to: give the recipient, or --from-csv FILE", err=True)
        sys.exit(2)
    submit(send_sms, dynamic_fields=fields_option(fields), **kwargs)


@enqueue.command("list-secret")
@click.argument("operation", type=click.Choice(["read", "create", "delete", "rotate"]))
@click.option("--list-id", required=True, type=int)
@click.option("--list-guid", help="The list's GUID (remembered once given).")
@common
def enqueue_list_secret(operation: str, **kwargs: Any) -> None:
    """Queue a ListSecret operation; the secret is stored encrypted, never printed."""
    from producers.enqueue import manage_list_secret

    submit(manage_list_secret, operation=operation, **kwargs)


def _addressing(func: Any) -> Any:
    """Options shared by `enqueue email` and `enqueue template`."""
    options = [
        click.option("--from", "sender", required=True, help='"Name <address>" or an address.'),
        click.option("--to", "to", multiple=True, help="A recipient (repeatable)."),
        click.option("--cc", "cc", multiple=True),
        click.option("--bcc", "bcc", multiple=True),
        click.option("--reply-to"),
        click.option(
            "--attach",
            "attach",
            multiple=True,
            type=click.Path(exists=True, dir_okay=False),
            help="A file to attach (repeatable).",
        ),
        click.option(
            "--embed",
            "embed",
            multiple=True,
            type=click.Path(exists=True, dir_okay=False),
            help="An image to embed, as cid:FILENAME (repeatable).",
        ),
        click.option("--campaign-code"),
        click.option("--campaign-name"),
        click.option("--field", "fields", multiple=True, help="A merge tag: NAME=VALUE."),
    ]
    for option in reversed(options):
        func = option(func)
    return common(func)


def _files(paths: tuple[str, ...]) -> list[Path]:
    """The paths as given: the producer reads each only once it is known to be a regular
    file under the size limit (a FIFO or a device is refused, not read)."""
    return [Path(p) for p in paths]


@enqueue.command("email")
@click.option("--subject", required=True)
@click.option("--html-file", type=click.Path(exists=True, dir_okay=False))
@click.option("--text-file", type=click.Path(exists=True, dir_okay=False))
@_addressing
def enqueue_email(
    html_file: str | None,
    text_file: str | None,
    attach: tuple[str, ...],
    embed: tuple[str, ...],
    fields: tuple[str, ...],
    **kwargs: Any,
) -> None:
    """Queue one transactional email (SendMessage)."""
    from producers.email import send_email

    submit(
        send_email,
        EMAIL_OPTIONS,
        html=Path(html_file).read_text() if html_file else None,
        text=Path(text_file).read_text() if text_file else None,
        attachments=_files(attach),
        embedded_images=_files(embed),
        dynamic_fields=fields_option(fields),
        **kwargs,
    )


@enqueue.command("template")
@click.option("--template-id", required=True, type=int)
@click.option("--subject", default="")
@_addressing
def enqueue_template(
    attach: tuple[str, ...], embed: tuple[str, ...], fields: tuple[str, ...], **kwargs: Any
) -> None:
    """Queue one transactional email from a MailUp template (SendTemplate)."""
    from producers.email import send_email_template

    submit(
        send_email_template,
        EMAIL_OPTIONS,
        attachments=_files(attach),
        embedded_images=_files(embed),
        dynamic_fields=fields_option(fields),
        **kwargs,
    )

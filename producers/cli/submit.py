"""What the enqueue commands share: NAME=VALUE fields, common options, and submitting a job
so that its id alone goes to stdout and a bad field is named as the option that was typed."""

from __future__ import annotations

import sys
import warnings
from typing import Any

import click

from producers.errors import InvalidJob

# How the CLI spells the API's field names, so an error names the option that was typed.
OPTION_FOR_FIELD = {
    "recipient": "--to",
    "to": "--to",
    "cc": "--cc",
    "bcc": "--bcc",
    "subject": "--subject",
    "reply_to": "--reply-to",
    "attachments": "--attach",
    "embedded_images": "--embed",
    "html": "--html-file",
    "content": "--content",
    "template_id": "--template-id",
    "campaign_code": "--campaign-code",
    "dynamic_fields": "--field",
    "sender": "--sender",
    "list_id": "--list-id",
    "list_guid": "--list-guid",
    "idempotency_key": "--idempotency-key",
    "priority": "--priority",
    "account": "--account",
    "email": "EMAIL",
    "force": "--force",
    "trusted_senders": "--trusted-sender",
    "trusted_domains": "--trusted-domain",
    "priority_code": "--priority-code",
    "username": "--username",
}


def fields_option(values: tuple[str, ...]) -> dict[str, str]:
    fields = {}
    for value in values:
        name, sep, text = value.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{value!r} is not NAME=VALUE", param_hint="--field")
        fields[name] = text
    return fields


# Email calls its From "sender", like SMS's --sender: the email commands say which is meant.
EMAIL_OPTIONS = {**OPTION_FOR_FIELD, "sender": "--from"}


def submit(call: Any, options: dict[str, str] = OPTION_FOR_FIELD, **kwargs: Any) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            job_id = call(**kwargs)
        except InvalidJob as exc:
            for field, reason in exc.errors.items():
                name = field.split(".")[0]
                option = options.get(name, "--" + name.replace("_", "-"))
                click.echo(f"invalid {option}: {reason}", err=True)
            sys.exit(2)
    for warning in caught:
        click.echo(f"warning: {warning.message}", err=True)
    click.echo(job_id)


common_options = [
    click.option("--account", default="default", show_default=True),
    click.option("--priority", default=5, show_default=True, type=int, help="0 most urgent."),
    click.option("--idempotency-key", help="The same key twice returns the first job's id."),
]


def common(func: Any) -> Any:
    for option in reversed(common_options):
        func = option(func)
    return func

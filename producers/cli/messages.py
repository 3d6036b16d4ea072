"""`mailup-jobs messages …`: a list's email messages, their tags and attachments (Console
API). Changes are jobs (their id alone on stdout); reads run at once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from producers.cli.lists import _fields_by_id, _table, account_option, json_option, list_id_option
from producers.cli.output import say
from producers.cli.submit import OPTION_FOR_FIELD, common, submit

# How these commands spell the fields, so an error names the option that was typed.
_OPTIONS = {
    **OPTION_FOR_FIELD,
    "html": "--html",
    "tags": "--tag",
    "fields": "--field",
    "message_id": "ID",
    "attachment": "FILE",
}
message_id_argument = click.argument("message_id", metavar="ID", type=int)
file_type = click.Path(exists=True, dir_okay=False, path_type=Path)


def _html(html: str | None, html_file: Path | None) -> str | None:
    if html is not None and html_file is not None:
        raise click.UsageError("give --html or --html-file, not both")
    return html_file.read_text(encoding="utf-8") if html_file is not None else html


def _html_options(func: Any) -> Any:
    func = click.option("--html-file", type=file_type, help="The HTML content, from a file.")(func)
    return click.option("--html", help="The HTML content.")(func)


@click.group("messages")
def messages_group() -> None:
    """A list's email messages, their tags and attachments."""


@messages_group.command("list")
@list_id_option
@click.option("--published", "which", flag_value="published", help="Only published ones.")
@click.option("--archived", "which", flag_value="archived", help="Only archived ones.")
@click.option("--filter", "filterby", help="MailUp's filterby, e.g. \"Subject.Contains('News')\".")
@click.option("--order", "orderby", help="MailUp's orderby, e.g. 'idMessage desc'.")
@click.option("--tags", help="With any of these tags: ids or names, e.g. \"1,13,'hello, world'\".")
@account_option
@json_option
def messages_list(list_id: int, which: Any, as_json: bool, **kwargs: Any) -> None:
    """A list's messages, from MailUp (the ledger's mirror is refreshed)."""
    from producers.messages import read_messages

    rows = read_messages(list_id, which=which or "all", **kwargs)
    _table(rows, ["message_id", "subject", "notes", "last_sent_at"], as_json)


@messages_group.command("show")
@message_id_argument
@list_id_option
@account_option
@json_option
def messages_show(message_id: int, list_id: int, account: str, as_json: bool) -> None:
    """A message: subject, notes, dynamic fields, tags, attachments (--json: all of it)."""
    from producers.messages import message_details

    found = message_details(message_id, list_id=list_id, account=account)
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    say(f"{found.get('idMessage')}  list {found.get('idList')}  {found.get('Subject')}")
    say(f"  notes: {found.get('Notes') or '-'}")
    click.echo(f"  dynamic fields: {'on' if found.get('UseDynamicField') else 'off'}")
    say("  tags: " + (", ".join(t["Name"] for t in found.get("Tags") or ()) or "-"))
    for attachment in found.get("Attachments") or ():
        say(f"  slot {attachment['Slot']}: {attachment['Name']}")


@messages_group.command("create")
@list_id_option
@click.option("--subject", required=True)
@_html_options
@click.option("--notes", default="")
@click.option("--tag", "tags", multiple=True, help="A tag of the list, by name or id (repeatable).")
@click.option("--field", "fields", multiple=True, help="A field's default value: FIELD_ID=VALUE.")
@click.option("--dynamic-fields", "use_dynamic_fields", is_flag=True, help="Enable dynamic fields.")
@click.option("--attach", multiple=True, type=file_type, help="A file to attach (at most 5).")
@common
def messages_create(
    html: str | None,
    html_file: Path | None,
    tags: tuple[str, ...],
    fields: tuple[str, ...],
    attach: tuple[Path, ...],
    **kwargs: Any,
) -> None:
    """Queue a message's creation; prints the job id."""
    from producers.email import Attachment
    from producers.messages import create_message

    content = _html(html, html_file)
    if content is None:
        raise click.UsageError("give the content: --html or --html-file")
    submit(
        create_message,
        _OPTIONS,
        html=content,
        tags=list(tags),
        fields=_fields_by_id(fields),
        attachments=[Attachment(p.name, p.read_bytes()) for p in attach],
        **kwargs,
    )


@messages_group.command("update")
@message_id_argument
@list_id_option
@click.option("--subject")
@_html_options
@click.option("--notes")
@click.option("--tag", "tags", multiple=True, help="Replace the tags (MailUp cannot clear them).")
@common
def messages_update(
    html: str | None, html_file: Path | None, tags: tuple[str, ...], **kwargs: Any
) -> None:
    """Queue changes to a message (what is not given stays); prints the job id."""
    from producers.messages import update_message

    content = _html(html, html_file)
    submit(update_message, _OPTIONS, html=content, tags=list(tags) or None, **kwargs)


@messages_group.command("copy")
@message_id_argument
@list_id_option
@click.option("--subject", help="The copy's subject (default: the original's).")
@click.option("--notes", help="The copy's notes (default: the original's).")
@common
def messages_copy(**kwargs: Any) -> None:
    """Queue copying a message; prints the job id (the copy's id is in its outcome)."""
    from producers.messages import copy_message

    submit(copy_message, _OPTIONS, **kwargs)


@messages_group.command("publish")
@message_id_argument
@list_id_option
@common
def messages_publish(**kwargs: Any) -> None:
    """Queue making a message visible online; prints the job id."""
    from producers.messages import publish_message

    submit(publish_message, _OPTIONS, **kwargs)


@messages_group.command("unpublish")
@message_id_argument
@list_id_option
@common
def messages_unpublish(**kwargs: Any) -> None:
    """Queue taking a message offline; prints the job id."""
    from producers.messages import unpublish_message

    submit(unpublish_message, _OPTIONS, **kwargs)


# --- tags ---------------------------------------------------------------------------------

tag_id_option = click.option("--tag-id", required=True, type=int)


@messages_group.group("tags")
def tags_group() -> None:
    """A list's tags (a message's tags must be the list's)."""


@tags_group.command("list")
@list_id_option
@account_option
@json_option
def tags_list(list_id: int, account: str, as_json: bool) -> None:
    """A list's tags, from MailUp."""
    from producers.messages import read_tags

    _table(read_tags(list_id, account=account), ["tag_id", "name", "enabled"], as_json)


@tags_group.command("create")
@list_id_option
@click.option("--name", required=True)
@common
def tags_create(**kwargs: Any) -> None:
    """Queue a tag's creation; prints the job id."""
    from producers.messages import create_tag

    submit(create_tag, _OPTIONS, **kwargs)


@tags_group.command("rename")
@list_id_option
@tag_id_option
@click.option("--name", required=True)
@common
def tags_rename(**kwargs: Any) -> None:
    """Queue renaming a tag; prints the job id."""
    from producers.messages import rename_tag

    submit(rename_tag, _OPTIONS, **kwargs)


@tags_group.command("delete")
@list_id_option
@tag_id_option
@common
def tags_delete(**kwargs: Any) -> None:
    """Queue a tag's deletion (it leaves every message); prints the job id."""
    from producers.messages import delete_tag

    submit(delete_tag, _OPTIONS, **kwargs)


# --- attachments --------------------------------------------------------------------------

message_id_option = click.option("--message-id", required=True, type=int)
slot_option = click.option("--slot", required=True, type=click.IntRange(1, 5))


@messages_group.group("attachments")
def attachments_group() -> None:
    """A message's attachments, in its five slots."""


@attachments_group.command("list")
@list_id_option
@message_id_option
@account_option
@json_option
def attachments_list(list_id: int, message_id: int, account: str, as_json: bool) -> None:
    """A message's attachments, from MailUp."""
    from producers.messages import read_attachments

    rows = read_attachments(message_id, list_id=list_id, account=account)
    _table(rows, ["slot", "name", "path"], as_json)


@attachments_group.command("add")
@list_id_option
@message_id_option
@slot_option
@click.argument("file", type=file_type)
@common
def attachments_add(file: Path, **kwargs: Any) -> None:
    """Queue putting FILE into a slot (replacing what is there); prints the job id."""
    from producers.email import Attachment
    from producers.messages import add_attachment

    attachment = Attachment(file.name, file.read_bytes())
    submit(
        add_attachment, {**_OPTIONS, "message_id": "--message-id"}, attachment=attachment, **kwargs
    )


@attachments_group.command("delete")
@list_id_option
@message_id_option
@slot_option
@common
def attachments_delete(**kwargs: Any) -> None:
    """Queue emptying a slot; prints the job id."""
    from producers.messages import delete_attachment

    submit(delete_attachment, {**_OPTIONS, "message_id": "--message-id"}, **kwargs)

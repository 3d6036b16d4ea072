"""Email messages, their tags and attachments through jobs, against the sandbox over HTTP, on
SQLite and PostgreSQL: tags checked before any write, whole messages put back on update, the
ledger's mirror kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from producers import Attachment, InvalidJob
from producers.messages import (
    add_attachment,
    copy_message,
    create_message,
    create_tag,
    delete_attachment,
    delete_tag,
    message_details,
    publish_message,
    read_attachments,
    read_messages,
    read_tags,
    rename_tag,
    set_dynamic_fields,
    unpublish_message,
    update_message,
)
from sandbox.server import Sandbox
from tests.conftest import Env
from tests.helpers import job, job_count, run_once
from tests.test_operator import mailup_jobs
from worker.jobs import messages
from worker.settings import get_settings


def _tag(list_id: int, name: str) -> int:
    job_id = create_tag(list_id=list_id, name=name)
    assert run_once(job_id) == "succeeded"
    tag_id: int = job(job_id)["outcome"]["tag_id"]
    return tag_id


def _message(list_id: int = 1, **fields: Any) -> int:
    job_id = create_message(list_id=list_id, subject="Hello", html="<p>Hi</p>", **fields)
    assert run_once(job_id) == "succeeded", job(job_id)["last_error"]
    message_id: int = job(job_id)["outcome"]["message_id"]
    return message_id


def _writes(sandbox: Sandbox) -> list[str]:
    return [
        f"{e['method']} {e['path']}"
        for e in sandbox.journal()
        if e["method"] != "GET" and "/Console/" in e["path"]
    ]


def test_a_message_is_created_with_the_lists_tags_by_name_or_id(sandbox: Sandbox, env: Env) -> None:
    welcome, news = _tag(1, "welcome"), _tag(1, "news")

    job_id = create_message(
        list_id=1, subject="Hello [Name]", html="<p>Hi</p>", notes="first", tags=["welcome", news]
    )

    assert run_once(job_id) == "succeeded"
    outcome = job(job_id)["outcome"]
    assert outcome["tags"] == ["welcome", "news"]
    [on_mailup] = sandbox.messages(1)
    assert on_mailup["id"] == outcome["message_id"]
    assert (on_mailup["subject"], on_mailup["notes"]) == ("Hello [Name]", "first")
    assert sorted(on_mailup["tag_ids"]) == sorted([welcome, news])
    assert on_mailup["use_dynamic_field"] is False
    assert messages.list_of(get_settings(), "default", outcome["message_id"]) == 1


def test_an_unknown_tag_is_refused_before_anything_is_written(sandbox: Sandbox, env: Env) -> None:
    _tag(1, "welcome")
    before = _writes(sandbox)

    job_id = create_message(list_id=1, subject="Hello", html="<p>Hi</p>", tags=["welcome", "vip"])

    assert run_once(job_id) == "failed"
    row = job(job_id)
    assert row["last_error_code"] == "tag_unknown"
    assert "'vip'" in row["last_error"] and "messages tags create" in row["last_error"]
    assert "'welcome'" not in row["last_error"]
    assert _writes(sandbox) == before
    assert sandbox.messages() == []


def test_dynamic_fields_are_enabled_by_a_default_value_or_by_a_job(
    sandbox: Sandbox, env: Env
) -> None:
    with_field = _message(fields={1: "friend"})
    plain = _message()
    assert {m["id"]: m["use_dynamic_field"] for m in sandbox.messages()} == {
        with_field: True,
        plain: False,
    }

    assert run_once(set_dynamic_fields(plain, list_id=1)) == "succeeded"
    assert message_details(plain, list_id=1)["UseDynamicField"] is True
    assert run_once(set_dynamic_fields(plain, list_id=1, enabled=False)) == "succeeded"
    assert message_details(plain, list_id=1)["UseDynamicField"] is False


def test_an_update_keeps_what_it_does_not_change(sandbox: Sandbox, env: Env) -> None:
    welcome, news = _tag(1, "welcome"), _tag(1, "news")
    message_id = _message(notes="keep me", tags=["welcome"], fields={1: "friend"})

    assert run_once(update_message(message_id, list_id=1, subject="Hello again")) == "succeeded"
    found = message_details(message_id, list_id=1)
    assert (found["Subject"], found["Content"], found["Notes"]) == (
        "Hello again",
        "<p>Hi</p>",
        "keep me",
    )
    assert [t["Id"] for t in found["Tags"]] == [welcome]
    assert found["UseDynamicField"] is True

    assert run_once(update_message(message_id, list_id=1, tags=["news"])) == "succeeded"
    assert [t["Id"] for t in message_details(message_id, list_id=1)["Tags"]] == [news]
    with pytest.raises(InvalidJob) as refused:
        update_message(message_id, list_id=1, tags=[])
    assert refused.value.field == "tags" and "cannot remove every tag" in str(refused.value)
    with pytest.raises(InvalidJob) as refused:
        update_message(message_id, list_id=1)
    assert refused.value.field == "subject"


def test_a_copy_is_a_new_message_of_the_list(sandbox: Sandbox, env: Env) -> None:
    original = _message(notes="v1")

    job_id = copy_message(original, list_id=1, subject="Hello (copy)")

    assert run_once(job_id) == "succeeded"
    outcome = job(job_id)["outcome"]
    assert outcome["copied_from"] == original and outcome["message_id"] != original
    copy = {m["id"]: m for m in sandbox.messages(1)}[outcome["message_id"]]
    assert (copy["subject"], copy["notes"]) == ("Hello (copy)", "v1")
    assert messages.list_of(get_settings(), "default", outcome["message_id"]) == 1


def test_a_message_whose_creation_answer_was_lost_is_found_not_made_again(
    sandbox: Sandbox, env: Env
) -> None:
    _message()  # one of the same subject made before: not it
    sandbox.force(500, operation="email_create", after_processing=True)
    job_id = create_message(list_id=1, subject="Hello", html="<p>Hi</p>")

    assert run_once(job_id) == "succeeded"
    made = sandbox.messages(1)[-1]
    outcome = job(job_id)["outcome"]
    assert (outcome["message_id"], outcome["reconciled"]) == (made["id"], True)
    assert len(sandbox.journal(operation="email_create")) == 2


def test_a_message_is_published_and_unpublished(sandbox: Sandbox, env: Env) -> None:
    message_id = _message()
    assert read_messages(1, which="published") == []

    assert run_once(publish_message(message_id, list_id=1)) == "succeeded"
    [published] = read_messages(1, which="published")
    assert published["message_id"] == message_id and published["url"]
    listed = mailup_jobs(env, "messages", "list", "--list-id", "1", "--published", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [m["message_id"] for m in json.loads(listed.stdout)] == [message_id]

    assert run_once(unpublish_message(message_id, list_id=1)) == "succeeded"
    assert read_messages(1, which="published") == []
    assert [m["message_id"] for m in read_messages(1)] == [message_id]


def test_reads_filter_by_tags(sandbox: Sandbox, env: Env) -> None:
    _tag(1, "welcome")
    _tag(1, "hello, world")
    tagged = _message(tags=["hello, world"])
    _message()

    found = read_messages(1, tags="'hello, world'")
    assert [m["message_id"] for m in found] == [tagged]
    assert found[0]["tags"] == ["hello, world"]


def test_tags_are_created_renamed_and_deleted(sandbox: Sandbox, env: Env) -> None:
    tag_id = _tag(1, "welcome")
    assert [(t["tag_id"], t["name"]) for t in read_tags(1)] == [(tag_id, "welcome")]

    again = create_tag(list_id=1, name="welcome")
    assert run_once(again) == "failed"
    assert job(again)["last_error_code"] == "tag_exists"

    assert run_once(rename_tag(list_id=1, tag_id=tag_id, name="hello")) == "succeeded"
    assert [t["name"] for t in read_tags(1)] == ["hello"]
    other = _tag(1, "news")
    sandbox.set_max_page_size(1)  # MailUp pages tags: each page is read
    assert [t["tag_id"] for t in read_tags(1)] == [other, tag_id]
    sandbox.set_max_page_size(20)
    assert run_once(delete_tag(list_id=1, tag_id=other)) == "succeeded"

    assert run_once(delete_tag(list_id=1, tag_id=tag_id)) == "succeeded"
    assert read_tags(1) == []


def test_a_lost_answer_to_a_tag_creation_is_reconciled(sandbox: Sandbox, env: Env) -> None:
    sandbox.force(504, operation="tag_create", after_processing=True)
    job_id = create_tag(list_id=1, name="vip")

    assert run_once(job_id) == "succeeded"
    outcome = job(job_id)["outcome"]
    assert outcome["reconciled"] is True
    assert [t["tag_id"] for t in read_tags(1)] == [outcome["tag_id"]]


def test_attachments_go_into_slots(sandbox: Sandbox, env: Env) -> None:
    files = [Attachment(f"doc{n}.txt", f"file {n}".encode()) for n in (1, 2)]
    message_id = _message(attachments=files)
    [on_mailup] = sandbox.messages(1)
    assert [(a["slot"], a["name"]) for a in on_mailup["attachments"]] == [
        (1, "doc1.txt"),
        (2, "doc2.txt"),
    ]

    added = add_attachment(
        list_id=1, message_id=message_id, slot=5, attachment=Attachment("terms.pdf", b"%PDF")
    )
    assert run_once(added) == "succeeded"
    assert [a["slot"] for a in read_attachments(message_id, list_id=1)] == [1, 2, 5]

    assert run_once(delete_attachment(list_id=1, message_id=message_id, slot=1)) == "succeeded"
    assert [a["name"] for a in read_attachments(message_id, list_id=1)] == [
        "doc2.txt",
        "terms.pdf",
    ]


def test_a_failed_attachment_fails_the_creation_naming_the_message_made(
    sandbox: Sandbox, env: Env
) -> None:
    sandbox.force(400, operation="attachment_add")
    files = [Attachment("doc1.txt", b"one")]
    job_id = create_message(list_id=1, subject="Hello", html="<p>Hi</p>", attachments=files)

    assert run_once(job_id) == "failed"
    row = job(job_id)
    [made] = sandbox.messages(1)
    assert row["last_error_code"] == "attachments_incomplete"
    assert f"message {made['id']} was created" in row["last_error"]
    assert "--slot 1" in row["last_error"]
    assert messages.list_of(get_settings(), "default", made["id"]) == 1


def test_more_than_five_attachments_are_refused_at_the_door(env: Env) -> None:
    files = [Attachment(f"doc{n}.txt", b"x") for n in range(6)]
    before = job_count()

    with pytest.raises(InvalidJob) as refused:
        create_message(list_id=1, subject="Hello", html="<p>Hi</p>", attachments=files)

    assert refused.value.field == "attachments" and "5 attachment slots" in str(refused.value)
    assert job_count() == before
    with pytest.raises(InvalidJob) as refused:
        add_attachment(list_id=1, message_id=1, slot=6, attachment=files[0])
    assert refused.value.field == "slot"


def test_the_mirror_knows_each_messages_list(sandbox: Sandbox, env: Env) -> None:
    settings = get_settings()
    in_one, in_two = _message(1), _message(2)
    assert messages.list_of(settings, "default", in_one) == 1
    assert messages.list_of(settings, "default", in_two) == 2
    assert messages.list_of(settings, "default", 999) is None

    with pytest.raises(InvalidJob) as refused:
        publish_message(in_two, list_id=1)
    assert refused.value.field == "message_id" and "belongs to list 2" in str(refused.value)


def test_the_cli_prints_the_job_id_alone(sandbox: Sandbox, env: Env, tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_text("<p>Hi</p>", encoding="utf-8")
    attached = tmp_path / "terms.txt"
    attached.write_text("terms", encoding="utf-8")
    tagged = mailup_jobs(env, "messages", "tags", "create", "--list-id", "1", "--name", "welcome")
    assert tagged.returncode == 0, tagged.stderr
    assert run_once(tagged.stdout.strip()) == "succeeded"

    made = mailup_jobs(
        env, "messages", "create", "--list-id", "1", "--subject", "Hello", "--html-file",
        str(page), "--tag", "welcome", "--field", "1=friend", "--attach", str(attached),
    )  # fmt: skip

    assert made.returncode == 0, made.stderr
    job_id = made.stdout.strip()
    assert run_once(job_id) == "succeeded"
    outcome = job(job_id)["outcome"]
    assert outcome["attachments"] == [{"slot": 1, "name": "terms.txt"}]
    shown = mailup_jobs(env, "messages", "show", str(outcome["message_id"]), "--list-id", "1")
    assert "Hello" in shown.stdout and "tags: welcome" in shown.stdout
    assert "slot 1: terms.txt" in shown.stdout
    refused = mailup_jobs(env, "messages", "attachments", "delete", "--list-id", "1",
                          "--message-id", "1", "--slot", "6")  # fmt: skip
    assert refused.returncode == 2 and refused.stdout == ""
    listed = mailup_jobs(env, "messages", "list", "--list-id", "1", "--json")
    assert listed.returncode == 0, listed.stderr
    assert '"subject": "Hello"' in listed.stdout

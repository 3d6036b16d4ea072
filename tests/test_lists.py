"""Lists, groups and recipients through jobs, against the sandbox over HTTP, on SQLite and
PostgreSQL: every write a job, lost answers reconciled, the ledger's mirror kept."""

from __future__ import annotations

import time
from typing import Any

import pytest

from producers import InvalidJob
from producers.lists import (
    add_recipient,
    clear_group,
    countries,
    create_group,
    create_list,
    delete_group,
    delete_list,
    read_groups,
    read_lists,
    read_recipients,
    subscribe,
    time_zones,
    unsubscribe,
    update_group,
    update_list,
)
from sandbox.server import Sandbox
from sandbox.state import list_guid
from tests.conftest import Env
from tests.helpers import job, make_due, run_once
from worker.jobs import lists
from worker.settings import get_settings

SENDER = {
    "owner_email": "news@example.com",
    "sender_name": "Shop news",
    "company_name": "Shop Srl",
    "contact_name": "Ada",
    "address": "Via Roma 1",
    "city": "Cremona",
    "country_code": "IT",
    "permission_reminder": "You signed up on our site.",
    "website_url": "https://shop.example.com",
}


def _mirror() -> dict[int, dict[str, Any]]:
    return {row["list_id"]: row for row in lists.mirrored(get_settings(), "default")}


def test_a_list_is_created_renamed_and_deleted_through_jobs(sandbox: Sandbox, env: Env) -> None:
    # Created: MailUp's new id and GUID in the outcome, and in the ledger's mirror
    created = create_list(name="Arrivals", **SENDER)
    assert run_once(created) == "succeeded"
    outcome = job(created)["outcome"]
    on_mailup = {m["id"]: m for m in sandbox.lists()}[outcome["list_id"]]
    assert outcome["list_guid"] == on_mailup["guid"] and outcome["reconciled"] is False
    assert _mirror()[outcome["list_id"]]["name"] == "Arrivals"

    # Renamed: the other mandatory fields are sent back as MailUp has them
    renamed = update_list(outcome["list_id"], name="Weekly news")
    assert run_once(renamed) == "succeeded"
    assert {m["id"]: m for m in sandbox.lists()}[outcome["list_id"]]["name"] == "Weekly news"
    assert _mirror()[outcome["list_id"]]["name"] == "Weekly news"

    # Deleted: its own GUID in If-Match; the mirror forgets it
    deleted = delete_list(outcome["list_id"])
    assert run_once(deleted) == "succeeded"
    assert outcome["list_id"] not in {m["id"] for m in sandbox.lists()}
    assert outcome["list_id"] not in _mirror()


def test_a_list_delete_with_a_wrong_guid_fails_with_the_reason_attempted_once(
    sandbox: Sandbox, env: Env
) -> None:
    job_id = delete_list(2, list_guid=list_guid(1))

    assert run_once(job_id) == "failed"
    make_due(job_id)
    assert run_once(job_id) is None
    row = job(job_id)
    assert "Invalid [listGuid] from If-Match" in row["last_error"]
    assert [a["http_status"] for a in row["attempts"]] == [412]
    assert len(sandbox.journal(operation="list_delete")) == 1
    assert 2 in {m["id"] for m in sandbox.lists()}


def test_a_lost_answer_to_a_list_creation_is_reconciled_not_repeated(
    sandbox: Sandbox, env: Env
) -> None:
    # MailUp creates the list, and the answer never arrives
    sandbox.force(500, operation="list_create", after_processing=True)
    job_id = create_list(name="Offers", **SENDER)

    assert run_once(job_id) == "succeeded"
    outcome = job(job_id)["outcome"]
    assert outcome["reconciled"] is True
    assert [m["name"] for m in sandbox.lists()].count("Offers") == 1
    assert len(sandbox.journal(operation="list_create")) == 1


def test_a_list_creation_whose_outcome_stays_unknown_is_in_doubt_not_made_again(
    sandbox: Sandbox, env: Env
) -> None:
    env.set(MAILUP_JOBS_VERIFY_WINDOW=0.5)
    sandbox.force(500, operation="list_create")  # nothing made, but a 500 proves nothing
    job_id = create_list(name="Offers", **SENDER)

    assert run_once(job_id) == "retrying"  # it looks for the list over the window
    time.sleep(0.6)
    make_due(job_id)
    assert run_once(job_id) == "in_doubt"
    assert job(job_id)["last_error_code"] == "creation_not_found"
    assert "Offers" not in [m["name"] for m in sandbox.lists()]
    assert len(sandbox.journal(operation="list_create")) == 1


def test_a_list_creation_refused_with_a_429_is_tried_again(sandbox: Sandbox, env: Env) -> None:
    sandbox.force(429, operation="list_create")  # proves nothing was made
    job_id = create_list(name="Offers", **SENDER)

    assert run_once(job_id) == "retrying"
    make_due(job_id)
    assert run_once(job_id) == "succeeded"
    assert job(job_id)["outcome"]["reconciled"] is False
    assert [m["name"] for m in sandbox.lists()].count("Offers") == 1


def test_a_second_list_of_the_same_name_is_refused(sandbox: Sandbox, env: Env) -> None:
    assert run_once(create_list(name="Offers", **SENDER)) == "succeeded"
    again = create_list(name="Offers", **SENDER)

    assert run_once(again) == "failed"
    assert job(again)["last_error_code"] == "list_exists"


def test_bad_list_input_names_the_field(env: Env) -> None:
    with pytest.raises(InvalidJob) as refused:
        create_list(name="x" * 51, **SENDER)
    assert refused.value.field == "name"
    with pytest.raises(InvalidJob) as refused:
        create_list(name="Offers", **{**SENDER, "country_code": "Italy"})
    assert refused.value.field == "country_code"
    with pytest.raises(InvalidJob) as refused:
        update_list(1)
    assert refused.value.field == "name"


def test_groups_are_created_renamed_cleared_and_deleted(sandbox: Sandbox, env: Env) -> None:
    created = create_group(list_id=1, name="Customers", notes="bought once")
    assert run_once(created) == "succeeded"
    group_id = job(created)["outcome"]["group_id"]
    sandbox.add_recipient(1, "ada@example.com", group_id=group_id)
    sandbox.add_recipient(1, "bob@example.com", group_id=group_id)

    assert run_once(update_group(list_id=1, group_id=group_id, name="Buyers")) == "succeeded"
    [group] = [g for g in sandbox.groups(1) if g["id"] == group_id]
    assert (group["name"], group["notes"]) == ("Buyers", "bought once")  # notes kept

    cleared = clear_group(list_id=1, group_id=group_id)
    assert run_once(cleared) == "succeeded"
    assert job(cleared)["outcome"]["removed"] == 2
    assert sandbox.group_members(group_id) == []
    assert len(sandbox.recipients(1, "subscribed")) == 2  # still on the list

    assert run_once(delete_group(list_id=1, group_id=group_id)) == "succeeded"
    assert group_id not in {g["id"] for g in sandbox.groups(1)}
    assert group_id not in {g["group_id"] for g in read_groups(1)}


def test_a_lost_answer_to_a_group_creation_is_reconciled(sandbox: Sandbox, env: Env) -> None:
    # MailUp creates the group; a gateway times out before its answer comes back
    sandbox.force(504, operation="group_create", after_processing=True)
    job_id = create_group(list_id=1, name="VIP")

    assert run_once(job_id) == "succeeded"
    outcome = job(job_id)["outcome"]
    assert outcome["reconciled"] is True
    assert [g["name"] for g in sandbox.groups(1)].count("VIP") == 1
    assert outcome["group_id"] == next(g["id"] for g in sandbox.groups(1) if g["name"] == "VIP")


def _a_group() -> int:
    created = create_group(list_id=1, name="Customers")
    assert run_once(created) == "succeeded"
    return int(job(created)["outcome"]["group_id"])


def test_a_404_after_a_lost_delete_answer_is_the_group_gone(sandbox: Sandbox, env: Env) -> None:
    group_id = _a_group()
    sandbox.force(504, operation="group_delete", after_processing=True)  # deleted, answer lost
    job_id = delete_group(list_id=1, group_id=group_id)

    assert run_once(job_id) == "retrying"
    make_due(job_id)
    assert run_once(job_id) == "succeeded"  # its 404: the earlier call deleted it
    assert [a["outcome"] for a in job(job_id)["attempts"]] == ["unknown", "succeeded"]


def test_a_404_after_a_refused_delete_is_a_group_nobody_here_deleted(
    sandbox: Sandbox, env: Env
) -> None:
    group_id = _a_group()
    sandbox.force(429, operation="group_delete")  # proves nothing was done
    job_id = delete_group(list_id=1, group_id=group_id)
    assert run_once(job_id) == "retrying"
    sandbox.force(404, "404", operation="group_delete")  # then: no such group

    make_due(job_id)
    assert run_once(job_id) == "failed"  # not "deleted": this job's call never reached it
    assert job(job_id)["attempts"][-1]["http_status"] == 404


def test_a_non_deletable_group_is_not_deleted(sandbox: Sandbox, env: Env) -> None:
    [test_group] = [g for g in sandbox.groups(1) if g["name"] == "TEST"]
    job_id = delete_group(list_id=1, group_id=test_group["id"])

    assert run_once(job_id) == "failed"
    assert job(job_id)["attempts"][0]["http_status"] == 400


def test_a_group_of_another_list_is_refused_at_the_door(sandbox: Sandbox, env: Env) -> None:
    read_groups(2)  # the ledger now knows list 2's groups
    [group] = [g for g in sandbox.groups(2) if g["name"] == "TEST"]

    with pytest.raises(InvalidJob) as refused:
        clear_group(list_id=1, group_id=group["id"])
    assert refused.value.field == "group_id" and "belongs to list 2" in str(refused.value)


def test_recipients_are_added_subscribed_and_unsubscribed(sandbox: Sandbox, env: Env) -> None:
    added = add_recipient(list_id=1, email="ada@example.com", name="Ada", fields={1: "Ada"})
    pending = add_recipient(list_id=1, email="bob@example.com", confirm_email=True)
    assert run_once(added) == run_once(pending) == "succeeded"
    ada = job(added)["outcome"]["recipient_id"]
    bob = job(pending)["outcome"]["recipient_id"]
    assert [r["email"] for r in read_recipients(list_id=1)] == ["ada@example.com"]
    assert [r["email"] for r in read_recipients(list_id=1, status="pending")] == ["bob@example.com"]

    assert run_once(unsubscribe(list_id=1, recipient_id=ada)) == "succeeded"
    assert run_once(subscribe(list_id=1, recipient_id=bob)) == "succeeded"
    statuses = {r["email"]: r["status"] for r in sandbox.recipients(1)}
    assert statuses == {"ada@example.com": "unsubscribed", "bob@example.com": "subscribed"}


def test_a_recipient_into_a_group_is_on_its_list_too(sandbox: Sandbox, env: Env) -> None:
    [group] = [g for g in sandbox.groups(1) if g["name"] == "TEST"]
    job_id = add_recipient(list_id=1, group_id=group["id"], email="cy@example.com")

    assert run_once(job_id) == "succeeded"
    assert [m["email"] for m in sandbox.group_members(group["id"])] == ["cy@example.com"]
    assert [r["email"] for r in read_recipients(list_id=1, group_id=group["id"])] == [
        "cy@example.com"
    ]


def test_a_lost_answer_to_a_recipient_addition_is_reconciled(sandbox: Sandbox, env: Env) -> None:
    sandbox.force(502, operation="recipient_add", after_processing=True)
    job_id = add_recipient(list_id=1, email="ada@example.com")

    assert run_once(job_id) == "succeeded"
    outcome = job(job_id)["outcome"]
    assert outcome["reconciled"] is True
    [ada] = sandbox.recipients(1)
    assert outcome["recipient_id"] == ada["id"]
    assert len(sandbox.journal(operation="recipient_add")) == 1


def test_a_lost_answer_re_adding_a_subscriber_is_retried_it_only_updates(
    sandbox: Sandbox, env: Env
) -> None:
    sandbox.add_recipient(1, "ada@example.com")
    sandbox.force(502, operation="recipient_add", after_processing=True)
    job_id = add_recipient(list_id=1, email="ada@example.com", name="Ada Lovelace")

    assert run_once(job_id) == "retrying"  # there before: nothing new to find, a repeat is safe
    make_due(job_id)
    assert run_once(job_id) == "succeeded"
    [ada] = sandbox.recipients(1)
    assert job(job_id)["outcome"]["recipient_id"] == ada["id"]
    assert len(sandbox.journal(operation="recipient_add")) == 2


def test_operators_read_lists_countries_and_time_zones(sandbox: Sandbox, env: Env) -> None:
    found = read_lists(filterby="Name.Contains('e')", orderby="idList desc")
    assert [row["name"] for row in found] == ["Alerts", "Newsletter"]
    assert {row["list_id"] for row in found} <= set(_mirror())
    assert "IT" in {c["code"] for c in countries()}
    assert "UTC+01:00.0" in {z["code"] for z in time_zones()}

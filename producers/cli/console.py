"""`mailup-jobs accounts|trusted-senders|smtp-users …`: the Console side and account pauses."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from producers.cli.output import say
from producers.cli.submit import common, submit


@click.group()
def accounts() -> None:
    """Paused channels of the accounts: list them, resume one."""


@accounts.command("status")
@click.option("--json", "as_json", is_flag=True)
def accounts_status(as_json: bool) -> None:
    """Every paused channel: account, channel, reason, since, until."""
    from worker.engine import pauses
    from worker.settings import get_settings

    rows = [
        {
            "account": p.account,
            "channel": p.scope,
            "reason": p.reason,
            "condition": p.condition,
            "since": p.since.isoformat(),
            "until": p.until.isoformat() if p.until else None,
            "next_probe": p.probe_at.isoformat() if p.probe_at and not p.until else None,
        }
        for p in pauses.listing(get_settings())
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no channel is paused")
    for row in rows:
        until = row["until"] or f"a probe ({row['next_probe']}) or resume"
        say(
            f"{row['account']}  {row['channel']}  since {row['since']}  until {until}  "
            f"{row['reason']}"
        )


@accounts.command("resume")
@click.option("--account", default="default", show_default=True)
@click.option("--channel", required=True, type=click.Choice(["email", "sms"]))
def accounts_resume(account: str, channel: str) -> None:
    """End a pause (after buying SMS credits, unblocking an SMTP+ user…); its jobs run again."""
    from worker.engine import pauses
    from worker.jobs.registry import channel_kinds
    from worker.settings import get_settings

    if not pauses.lift(get_settings(), account, channel, channel_kinds(channel)):
        click.echo(f"{channel} of account {account} was not paused", err=True)


@click.group("trusted-senders")
def trusted_senders_group() -> None:
    """Trust, list and disable sender addresses (Console API)."""


@trusted_senders_group.command("add")
@click.argument("email")
@click.option(
    "--force",
    is_flag=True,
    help="Also an address already trusted (any StatusCode but 0 and 2: back to NotConfirmed) "
    "or disabled.",
)
@common
def trusted_senders_add(email: str, **kwargs: Any) -> None:
    """Queue trusting EMAIL (MailUp mails it a verification link); prints the job id."""
    from producers.console import trust_sender

    submit(trust_sender, email=email, **kwargs)


@trusted_senders_group.command("disable")
@click.argument("email")
@click.option("--sender-id", help="IdTrustedSender (found in the ledger when omitted).")
@common
def trusted_senders_disable(email: str, **kwargs: Any) -> None:
    """Queue disabling EMAIL: it can never be trusted again. Prints the job id."""
    from producers.console import disable_trusted_sender

    submit(disable_trusted_sender, email=email, **kwargs)


@trusted_senders_group.command("list")
@click.option("--account", default="default", show_default=True)
@click.option("--refresh", is_flag=True, help="Read them from MailUp first.")
@click.option("--json", "as_json", is_flag=True)
def trusted_senders_list(account: str, refresh: bool, as_json: bool) -> None:
    """The account's trusted senders, as last seen."""
    from producers.console import list_trusted_senders

    rows = list_trusted_senders(account, refresh=refresh)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        say(f"{row['sender_id']}  {row['email']:<40} {row['status']}")


@trusted_senders_group.command("show")
@click.argument("email_or_id")
@click.option("--account", default="default", show_default=True)
@click.option("--refresh", is_flag=True, help="Read them from MailUp first.")
def trusted_senders_show(email_or_id: str, account: str, refresh: bool) -> None:
    """One trusted sender, by address or IdTrustedSender."""
    from producers.console import list_trusted_senders

    found = [
        row
        for row in list_trusted_senders(account, refresh=refresh)
        if email_or_id.lower() == row["email"].lower() or email_or_id == row["sender_id"]
    ]
    if not found:
        click.echo(f"no trusted sender {email_or_id} (try --refresh)", err=True)
        sys.exit(1)
    click.echo(json.dumps(found[0], indent=2))


@click.group("smtp-users")
def smtp_users_group() -> None:
    """SMTP+ users: priorities, creation, password reset, status."""


@smtp_users_group.command("priorities")
@click.option("--account", default="default", show_default=True)
def smtp_users_priorities(account: str) -> None:
    """MailUp's SMTP+ priority codes."""
    from producers.console import smtp_priorities

    for item in smtp_priorities(account):
        say(f"{item['code']}  {item['name']}")


@smtp_users_group.command("create")
@click.option("--list-id", required=True, type=int)
@click.option("--trusted-sender", "trusted_senders", multiple=True, help="Repeatable.")
@click.option("--trusted-domain", "trusted_domains", multiple=True, help="Repeatable.")
@click.option("--priority-code", type=int)
@click.option("--note", default="")
@click.option("--disabled", is_flag=True, help="Create it disabled.")
@common
def smtp_users_create(
    trusted_senders: tuple[str, ...],
    trusted_domains: tuple[str, ...],
    disabled: bool,
    **kwargs: Any,
) -> None:
    """Queue an SMTP+ user creation; it waits for its trusted senders' confirmation."""
    from producers.console import create_smtp_user

    submit(
        create_smtp_user,
        trusted_senders=list(trusted_senders),
        trusted_domains=list(trusted_domains),
        is_enabled=not disabled,
        **kwargs,
    )


@smtp_users_group.command("reset-password")
@click.option("--list-id", required=True, type=int)
@click.option("--username", required=True)
@common
def smtp_users_reset(**kwargs: Any) -> None:
    """Queue a password reset; the new password is stored encrypted, not printed."""
    from producers.console import reset_smtp_password

    submit(reset_smtp_password, **kwargs)


@smtp_users_group.command("info")
@click.argument("username", required=False)
@click.option("--account", default="default", show_default=True)
def smtp_users_info(username: str | None, account: str) -> None:
    """ListUserInfo: the SMTP+ users of the account's list and whether they can send."""
    from producers.console import smtp_user_info

    click.echo(json.dumps(smtp_user_info(username, account), indent=2))


@smtp_users_group.command("password")
@click.argument("username")
@click.option("--account", default="default", show_default=True)
@click.option("--reveal", is_flag=True, help="Really print it.")
def smtp_users_password(username: str, account: str, reveal: bool) -> None:
    """The stored password of an SMTP+ user created or reset here (only with --reveal)."""
    from producers.console import smtp_password

    password = smtp_password(username, account)
    if password is None:
        click.echo(f"no stored password for {username}", err=True)
        sys.exit(1)
    click.echo(password if reveal else "stored (encrypted); add --reveal to print it")

"""The ledger report (`mailup-jobs ledger report --html`), on SQLite and PostgreSQL ledgers
filled by real jobs against the sandbox over HTTP, opened in headless Chromium: it loads
nothing but itself, its charts draw the numbers `ledger costs` and `ledger sends` print, an
empty period says so, and MailUp's and users' words are shown as text, never run."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from producers import audit as api
from producers import send_sms
from sandbox.server import Sandbox
from tests.conftest import Env
from tests.helpers import job_count, run_once
from tests.test_audits import PHONE, Filled, fill_ledger, run_cli


def report(env: Env, path: Path, *args: str) -> str:
    """`ledger report --html PATH ARGS`; what it printed."""
    result = run_cli(env, "ledger", "report", "--html", str(path), *args)
    assert result.stdout.startswith(f"{path}: "), result.stdout
    return result.stdout


def cli_json(env: Env, *args: str) -> Any:
    return json.loads(run_cli(env, *args, "--format", "json").stdout)


@dataclass
class Opened:
    """The report as Chromium shows it."""

    page: Any
    requests: list[str]
    dialogs: list[str]

    def data(self) -> Any:
        """The rows the page embeds, as the browser parsed them."""
        return self.page.evaluate("JSON.parse(document.getElementById('report-data').textContent)")

    def bars(self, chart: str) -> list[dict[str, Any]]:
        """The bars of one chart: their numbers, and their drawn size."""
        return list(
            self.page.evaluate(
                """chart => [...document.querySelectorAll(`#chart-${chart} rect.bar`)].map(r => ({
                    day: r.dataset.day, row: r.dataset.row, series: r.dataset.series,
                    value: Number(r.dataset.value), width: r.getBBox().width,
                    height: r.getBBox().height, title: r.querySelector('title').textContent}))""",
                chart,
            )
        )

    def text(self, selector: str) -> str:
        return str(self.page.inner_text(selector))


@contextmanager
def opened(browser: Any, path: Path, screenshot: Path) -> Iterator[Opened]:
    """The page opened from its file, every request and dialog it made logged, and a
    full-page screenshot saved."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    seen = Opened(page, [], [])
    page.on("request", lambda request: seen.requests.append(request.url))
    page.on("dialog", lambda dialog: (seen.dialogs.append(dialog.message), dialog.dismiss()))
    try:
        page.goto(path.as_uri(), wait_until="load")
        page.screenshot(path=str(screenshot), full_page=True)
        print(f"screenshot of {path.name}: {screenshot}")
        yield seen
    finally:
        context.close()


def per_day(bars: list[dict[str, Any]]) -> dict[str, float]:
    days: dict[str, float] = defaultdict(float)
    for bar in bars:
        days[bar["day"]] += bar["value"]
    return dict(days)


def test_the_report_draws_the_numbers_the_audits_print(
    env: Env, sandbox: Sandbox, browser: Any, tmp_path: Path
) -> None:
    # Given a ledger of SMS, email and campaign jobs over two days, and the SMS channel paused
    filled: Filled = fill_ledger(sandbox)
    sandbox.set_account(1234, credits=0)
    assert run_once(send_sms(list_id=1, recipient=PHONE, content="No credits")) == "retrying"

    # When the operator writes the report and opens it
    path = tmp_path / "report.html"
    printed = report(env, path)
    sends = cli_json(env, "ledger", "sends", "--by", "day")
    costs_by_day = cli_json(env, "ledger", "costs", "--by", "day")
    costs_by_campaign = cli_json(env, "ledger", "costs", "--by", "campaign")
    failures = cli_json(env, "ledger", "failures", "--by", "code")
    in_doubt = cli_json(env, "jobs", "in-doubt")
    paused = json.loads(run_cli(env, "accounts", "status", "--json").stdout)
    with opened(browser, path, tmp_path / "report.png") as page:
        # Then it loaded nothing but itself, and ran nothing
        assert page.requests == [path.as_uri()]
        assert page.dialogs == []

        # Its rows are those the CLI prints
        data = page.data()
        assert data["sends"] == sends
        assert data["costs_by_day"] == costs_by_day
        assert data["costs_by_campaign"] == costs_by_campaign
        assert data["failures"] == failures
        assert data["in_doubt"] == in_doubt
        assert data["paused"] == [
            {k: p[k] for k in ("account", "channel", "reason", "since", "until")} for p in paused
        ]
        jobs = len(filled.jobs) + 1
        assert sum(day["total"] for day in sends) == job_count() == jobs
        assert data["totals"]["jobs"] == jobs
        assert data["totals"]["credits"] == sum(c["credits"] for c in costs_by_day) == 5.0
        assert f": {jobs} jobs, 4 SMS; now 2 in doubt, 1 paused channels" in printed

        # The header's totals
        assert page.text("[data-total=jobs]") == str(jobs)
        assert page.text("[data-total=sms]") == "4"
        assert page.text("[data-total=credits]") == "5"
        assert page.text("[data-total=to_resolve]") == "2"
        assert page.text("[data-total=paused]") == "1"
        assert page.text("header .period").startswith("the first job to now")

        # Jobs per day by kind: each day's bars add up to `ledger sends`, each kind's to
        # `ledger sends --kind`, and each bar is drawn as tall as its number says
        volume = page.bars("volume")
        assert per_day(volume) == {d["day"]: d["total"] for d in sends}
        kinds = {bar["series"] for bar in volume}
        assert {"send_sms", "campaign_send", "message_create"} <= kinds
        assert set(page.text("section:has(#chart-volume) .legend").split()) == kinds
        for kind in kinds:
            bars = {bar["day"]: bar["value"] for bar in volume if bar["series"] == kind}
            assert bars == {d.day: d.total for d in api.sends_by_day(kind=kind)}
        today = str(filled.today)
        sms_today = next(b for b in volume if b["series"] == "send_sms" and b["day"] == today)
        assert sms_today["value"] == 8 and "send_sms, 8 jobs" in sms_today["title"]
        per_job = [bar["height"] / bar["value"] for bar in volume]
        assert max(per_job) - min(per_job) < 0.05
        # every day has its place, the quiet one between too
        days = page.page.eval_on_selector_all(
            "#chart-volume text.day", "t => t.map(e => e.dataset.day)"
        )
        assert days == [str(filled.earlier + timedelta(days=n)) for n in range(3)]

        # SMS credits per day and per campaign: `ledger costs --by day|campaign`
        assert per_day(page.bars("credits-day")) == {c["day"]: c["credits"] for c in costs_by_day}
        campaigns = {bar["row"]: bar["value"] for bar in page.bars("credits-campaign")}
        assert campaigns == {
            c["campaign_code"] or "no campaign code": c["credits"] for c in costs_by_campaign
        }
        assert campaigns == {"otp": 2.0, "promo": 2.0, "no campaign code": 1.0}
        bars = page.bars("credits-campaign")
        assert bars[0]["width"] == pytest.approx(bars[1]["width"]) == 2 * bars[2]["width"]

        # Failures per day (`ledger sends` failed and in_doubt) and by code
        failed = page.bars("failures")
        for series, status in (("failed", "failed"), ("in doubt", "in_doubt")):
            drawn = per_day([bar for bar in failed if bar["series"] == series])
            assert drawn == {d["day"]: d[status] for d in sends if d[status]}
        codes = {(bar["row"], bar["series"]): bar["value"] for bar in page.bars("codes")}
        assert codes == {
            **{(f"{f['api']} {f['code']}", "failed"): f["failed"] for f in failures if f["failed"]},
            **{
                (f"{f['api']} {f['code']}", "in doubt"): f["in_doubt"]
                for f in failures
                if f["in_doubt"]
            },
        }
        meanings = page.text("section:has(h2:text('what they mean')) table")
        assert "SMS number [recipient] is in optout state" in meanings

        # What waits for a person: the in_doubt jobs with their commands, the paused channel
        to_resolve = page.text("section:has(h2:text-matches('^In doubt')) table")
        for row in in_doubt:
            assert f"mailup-jobs jobs resolve {row['id']} --sent" in to_resolve
            assert f"mailup-jobs jobs resolve {row['id']} --not-sent" in to_resolve
        channels = page.text("section:has(h2:text-matches('^Paused')) table")
        assert paused[0]["reason"] in channels
        assert "mailup-jobs accounts resume --account default --channel sms" in channels
        assert page.page.query_selector("#nothing") is None


def test_an_empty_period_says_so_instead_of_drawing_charts(
    env: Env, list_secret: str, browser: Any, tmp_path: Path
) -> None:
    # Given an empty ledger
    empty = tmp_path / "empty.html"
    assert ": 0 jobs, 0 SMS; now 0 in doubt, 0 paused channels" in report(env, empty)
    with opened(browser, empty, tmp_path / "empty.png") as page:
        assert page.requests == [empty.as_uri()]
        assert "Nothing in this period." in page.text("#nothing")
        assert page.page.query_selector_all("svg.chart") == []
        assert page.text("[data-total=jobs]") == "0"
        assert "No job is in doubt." in page.text("main")
        assert "No channel is paused." in page.text("main")

    # A job accepted today is not in a period that ended before it ...
    today = datetime.now(UTC).date()
    send_sms(list_id=1, recipient=PHONE, content="Later")
    earlier = today - timedelta(days=2)
    before = tmp_path / "before.html"
    report(env, before, "--since", str(earlier - timedelta(days=5)), "--until", str(earlier))
    with opened(browser, before, tmp_path / "before.png") as page:
        assert page.page.query_selector_all("svg.chart") == []
        assert page.text("header .period").startswith(f"{earlier - timedelta(days=5)} to {earlier}")
        assert page.data()["sends"] == []

    # ... and it is one bar of today's
    page_today = tmp_path / "today.html"
    report(env, page_today, "--since", str(today))
    with opened(browser, page_today, tmp_path / "today.png") as page:
        assert page.page.query_selector("#nothing") is None
        [bar] = page.bars("volume")
        assert (bar["day"], bar["series"], bar["value"]) == (str(today), "send_sms", 1)
        assert "No SMS was answered in this period." in page.text("main")


EVIL = '<script>document.title="pwned"</script><img src="x" onerror="alert(1)">&amp;'


def test_text_from_mailup_and_users_is_shown_as_text(
    env: Env, sandbox: Sandbox, list_secret: str, browser: Any, tmp_path: Path
) -> None:
    # Given a campaign code of the user's, and MailUp's words on an in_doubt SMS and a pause
    sent = send_sms(list_id=1, recipient=PHONE, content="Hi", campaign_code=EVIL)
    assert run_once(sent) == "succeeded"
    sandbox.force(500, "300", description=EVIL, operation="send_sms", after_processing=True)
    assert run_once(send_sms(list_id=1, recipient=PHONE, content="Lost")) == "in_doubt"
    sandbox.force(403, "205", description=f"NO CREDITS {EVIL}", operation="send_sms")
    assert run_once(send_sms(list_id=1, recipient=PHONE, content="Wait")) == "retrying"
    [pause] = api.paused_channels()
    assert EVIL in pause.reason

    path = tmp_path / "report.html"
    report(env, path)
    page_text = path.read_text()
    assert "<script>document" not in page_text and '<img src="x"' not in page_text
    with opened(browser, path, tmp_path / "report.png") as page:
        # Then nothing ran and nothing loaded: the <img> would have asked for "x"
        assert page.requests == [path.as_uri()]
        assert page.dialogs == []
        assert page.page.title() != "pwned"
        assert page.page.eval_on_selector_all("script", "s => s.map(e => e.type)") == [
            "application/json"
        ]
        assert page.page.query_selector_all("img") == []
        # The words are shown as they were written
        [campaign] = page.bars("credits-campaign")
        assert campaign["row"] == EVIL and campaign["title"] == f"{EVIL}: 1 credit charged"
        assert EVIL in page.text("section:has(h2:text-matches('^In doubt')) table")
        assert EVIL in page.text("section:has(h2:text-matches('^Paused')) table")
        assert page.data()["costs_by_campaign"][0]["campaign_code"] == EVIL


def test_a_bad_period_or_path_is_one_line_and_writes_nothing(env: Env, tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    args = ("ledger", "report", "--html", str(path))
    refused = run_cli(env, *args, "--since", "2026-02-01", "--until", "2026-01-01", code=2)
    assert "until: must be later than since" in refused.stderr
    bad = run_cli(env, *args, "--since", "last week", code=2)
    assert "--since" in bad.stderr and "not an ISO date" in bad.stderr
    missing = tmp_path / "no-such-dir" / "report.html"
    unwritable = run_cli(env, "ledger", "report", "--html", str(missing), code=1)
    assert unwritable.stderr.strip().splitlines() == [
        f"Error: Could not open file '{missing}': No such file or directory"
    ]
    assert not path.exists() and not list(tmp_path.glob(".report.html*"))

"""The ledger report: one HTML page that opens anywhere, nothing to fetch and nothing to run —
jobs per day by kind, SMS credits per day and per campaign, failures per day and their codes, the
in_doubt jobs to resolve and the paused channels.

    from producers.report import collect, render, write
    write("out.html", render(collect(since="2026-01-01")))

``collect`` reads the audits (``producers.audit``); ``render`` is a pure function of what it
read. The page embeds those rows as JSON (``<script type="application/json"
id="report-data">``, the same rows as ``mailup-jobs ledger … --format json``) and each bar of
its charts carries its numbers (``data-day`` or ``data-row``, ``data-series``,
``data-value``), so what it shows can be checked against the CLI.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import tempfile
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from html import escape
from pathlib import Path
from typing import Any

from producers import audit
from worker.audits.failures import Failure
from worker.audits.in_doubt import InDoubtJob
from worker.audits.period import Moment, Period
from worker.audits.volume import Credits, DayKind, DaySends
from worker.engine.pauses import Pause

# Okabe and Ito's palette, told apart with every common colour-vision deficiency; grey is
# for "other kinds".
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
OTHER = "#9E9E9E"
FAILED, IN_DOUBT = "#D55E00", "#E69F00"
# The most kinds, campaigns, codes and in_doubt jobs shown one by one; the rest are summed up.
TOP_KINDS, TOP_ROWS, TOP_JOBS = len(PALETTE), 12, 50
NOTHING = "Nothing in this period."


@dataclass(frozen=True)
class Report:
    """What the page shows: the audits over ``period``, and what waits for a person now."""

    period: Period
    generated_at: datetime
    sends: Sequence[DaySends]
    kinds: Sequence[DayKind]
    costs_by_day: Sequence[Credits]
    costs_by_campaign: Sequence[Credits]
    failures: Sequence[Failure]
    # Not bound to the period: every in_doubt job and every pause there is now.
    in_doubt: Sequence[InDoubtJob]
    paused: Sequence[Pause]

    def totals(self) -> dict[str, Any]:
        statuses: Counter[str] = Counter()
        for day in self.sends:
            statuses.update(day.jobs)
        return {
            "jobs": sum(statuses.values()),
            "succeeded": statuses["succeeded"],
            "failed": statuses["failed"],
            "in_doubt": statuses["in_doubt"],
            "sms": sum(c.sms for c in self.costs_by_day),
            "credits": float(sum((c.credits for c in self.costs_by_day), Decimal())),
            "to_resolve": len(self.in_doubt),
            "paused": len(self.paused),
        }

    def as_dict(self) -> dict[str, Any]:
        """Everything the page shows, as the JSON it embeds."""
        return {
            "period": {
                "since": _iso(self.period.since),
                "until": _iso(self.period.until),
            },
            "generated_at": self.generated_at.isoformat(),
            "totals": self.totals(),
            "sends": [row.as_dict() for row in self.sends],
            "kinds": [row.as_dict() for row in self.kinds],
            "costs_by_day": [row.as_dict() for row in self.costs_by_day],
            "costs_by_campaign": [row.as_dict() for row in self.costs_by_campaign],
            "failures": [row.as_dict() for row in self.failures],
            "in_doubt": [row.as_dict() for row in self.in_doubt],
            "paused": [_pause_dict(p) for p in self.paused],
        }


def collect(*, since: Moment = None, until: Moment = None) -> Report:
    """The report's rows from the ledger, over ``since`` .. ``until`` as the audits take them.

    Raises:
        ValueError: naming ``since`` or ``until``.
    """
    period = Period.of(since, until)
    start, end = period.since, period.until
    return Report(
        period=period,
        generated_at=datetime.now(UTC),
        sends=audit.sends_by_day(since=start, until=end),
        kinds=audit.kinds_by_day(since=start, until=end),
        costs_by_day=audit.sms_costs("day", since=start, until=end),
        costs_by_campaign=audit.sms_costs("campaign", since=start, until=end),
        failures=audit.failures_by_code(since=start, until=end),
        in_doubt=audit.in_doubt_jobs(),
        paused=audit.paused_channels(),
    )


def write(path: str | os.PathLike[str], page: str) -> None:
    """Write the page whole or not at all: a reader never finds half a report."""
    target = Path(path)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(page)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        os.unlink(temporary)
        raise


def render(report: Report) -> str:
    """The page: every text from the ledger (MailUp's words, users' names) escaped."""
    days = _axis(report)
    nothing = not report.sends and not report.costs_by_day
    body = [
        _header(report, nothing),
        '<main class="grid">',
        _card("Jobs per day, by kind", _volume(report, days), wide=True),
        _card("SMS credits per day", _credits_per_day(report, days)),
        _card("SMS credits per campaign", _credits_per_campaign(report)),
        _card("Failures per day", _failures_per_day(report, days)),
        _card("Top failure codes", _top_codes(report)),
        _card("Failure codes and what they mean", _codes_table(report), wide=True),
        _card(f"In doubt: {len(report.in_doubt)} to resolve", _in_doubt(report), wide=True),
        _card(f"Paused channels: {len(report.paused)}", _paused(report), wide=True),
        "</main>",
    ]
    data = json.dumps(report.as_dict(), separators=(",", ":"))
    # In a <script> element only "</script" could end it early: no "<" is left to do so.
    data = data.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    title = f"Ledger report, {_period_text(report.period)}"
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            # Nothing may load or run: the page is whole as it is.
            '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
            "style-src 'unsafe-inline'\">",
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_e(title)}</title>",
            f"<style>{CSS}</style>",
            "</head><body>",
            *body,
            f'<script type="application/json" id="report-data">{data}</script>',
            "</body></html>",
            "",
        ]
    )


# --- the sections ---------------------------------------------------------------------------


def _header(report: Report, nothing: bool) -> str:
    totals = report.totals()
    tiles = [
        ("jobs", "jobs accepted", _number(totals["jobs"])),
        ("succeeded", "succeeded", _number(totals["succeeded"])),
        ("failed", "failed", _number(totals["failed"])),
        ("in_doubt", "in doubt", _number(totals["in_doubt"])),
        ("sms", "SMS sent", _number(totals["sms"])),
        ("credits", "SMS credits", _number(totals["credits"])),
        ("to_resolve", "to resolve now", _number(totals["to_resolve"])),
        ("paused", "paused now", _number(totals["paused"])),
    ]
    shown = "".join(
        f'<div class="tile{" alert" if name in ("to_resolve", "paused") and value != "0" else ""}">'
        f'<dt>{label}</dt><dd data-total="{name}">{value}</dd></div>'
        for name, label, value in tiles
    )
    banner = (
        f'<p class="nothing" id="nothing">{NOTHING} No job was accepted and no SMS was '
        "answered then.</p>"
        if nothing
        else ""
    )
    generated = f"{report.generated_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    return (
        "<header><h1>mailup-jobs · ledger report</h1>"
        f'<p class="period"><strong>{_e(_period_text(report.period))}</strong> '
        f"(UTC days) · generated {generated}</p>"
        f'<dl class="totals">{shown}</dl>{banner}</header>'
    )


def _card(title: str, content: str, *, wide: bool = False) -> str:
    return f'<section class="card{" wide" if wide else ""}"><h2>{_e(title)}</h2>{content}</section>'


def _volume(report: Report, days: list[str]) -> str:
    if not report.kinds:
        return _empty()
    by_kind: dict[str, dict[str, float]] = {}
    for row in report.kinds:
        by_kind.setdefault(row.kind, {})[row.day] = row.jobs
    ranked = sorted(by_kind, key=lambda kind: (-sum(by_kind[kind].values()), kind))
    series = [
        Series(kind, PALETTE[i % len(PALETTE)], by_kind[kind]) for i, kind in enumerate(ranked)
    ]
    if len(ranked) > TOP_KINDS:  # a colour a kind, the smallest kinds together
        series = series[: TOP_KINDS - 1]
        other: dict[str, float] = {}
        for kind in ranked[TOP_KINDS - 1 :]:
            for day, jobs in by_kind[kind].items():
                other[day] = other.get(day, 0) + jobs
        series.append(Series("other kinds", OTHER, other))
    caption = "Jobs accepted each day, whatever became of them (ledger sends --by day)."
    chart = _columns("volume", days, series, "job", width=2 * WIDTH)
    return _legend(series) + chart + _caption(caption)


def _credits_per_day(report: Report, days: list[str]) -> str:
    if not report.costs_by_day:
        return _empty("No SMS was answered in this period.")
    credits: dict[str, dict[str, float]] = {}
    sms: dict[str, dict[str, str]] = {}
    for row in report.costs_by_day:
        credits.setdefault(row.account, {})[str(row.group)] = float(row.credits)
        sms.setdefault(row.account, {})[str(row.group)] = f"for {_count(row.sms, 'SMS', 'SMS')}"
    series = [
        Series(account, PALETTE[i % len(PALETTE)], credits[account], sms[account])
        for i, account in enumerate(sorted(credits))
    ]
    caption = "Credits MailUp charged for the SMS it answered each day, per account."
    return _legend(series) + _columns("credits-day", days, series, "credit") + _caption(caption)


def _credits_per_campaign(report: Report) -> str:
    if not report.costs_by_campaign:
        return _empty("No SMS was answered in this period.")
    several = len({row.account for row in report.costs_by_campaign}) > 1
    ranked = sorted(report.costs_by_campaign, key=lambda c: (-c.credits, -c.sms))
    rows = [
        Bar(
            label=(f"{c.account} · " if several else "") + _campaign(c.group),
            values={"charged": float(c.credits)},
            note=f"{_count(float(c.credits), 'credit')} · {_count(c.sms, 'SMS', 'SMS')}",
        )
        for c in ranked[:TOP_ROWS]
    ]
    series = [Series("charged", PALETTE[0])]
    more = _more(ranked[TOP_ROWS:], "campaigns", "ledger costs --by campaign")
    return _bars("credits-campaign", rows, series, "credit") + more


def _failures_per_day(report: Report, days: list[str]) -> str:
    failed = {d.day: float(d.jobs.get("failed", 0)) for d in report.sends}
    doubt = {d.day: float(d.jobs.get("in_doubt", 0)) for d in report.sends}
    if not any(failed.values()) and not any(doubt.values()):
        return _empty("No job failed in this period.")
    series = [Series("failed", FAILED, failed), Series("in doubt", IN_DOUBT, doubt)]
    caption = "Jobs failed or in doubt now, by the day they were accepted."
    return _legend(series) + _columns("failures", days, series, "job") + _caption(caption)


def _top_codes(report: Report) -> str:
    if not report.failures:
        return _empty("No job failed in this period.")
    rows = [
        Bar(
            label=f"{f.api} {f.code}",
            values={"failed": f.failed, "in doubt": f.in_doubt},
            note=_number(f.total),
            tooltip=f.meaning,
        )
        for f in report.failures[:TOP_ROWS]
    ]
    series = [Series("failed", FAILED), Series("in doubt", IN_DOUBT)]
    more = _more(report.failures[TOP_ROWS:], "codes", "ledger failures --by code")
    return _legend(series) + _bars("codes", rows, series, "job") + more


def _codes_table(report: Report) -> str:
    if not report.failures:
        return _empty("No job failed in this period.")
    rows = [
        [
            _e(f.api),
            f"<code>{_e(f.code)}</code>",
            _e(f.meaning),
            _number(f.failed),
            _number(f.in_doubt),
            _e(", ".join(f.kinds)),
        ]
        for f in report.failures
    ]
    return _table(["API", "code", "meaning", "failed", "in doubt", "kinds"], rows, numeric={3, 4})


def _in_doubt(report: Report) -> str:
    if not report.in_doubt:
        return _empty("No job is in doubt.", positive=True)
    now = report.generated_at
    rows = [
        [
            f'<code class="id">{_e(job.id)}</code><div class="sub">{_e(job.kind)} · '
            f"{_e(job.account)} · {_count(job.attempts, 'attempt')}</div>",
            f'<span title="{_e(_when(job.since))}">{_e(_age(now - job.since))}</span>',
            f"<code>{_e(job.code or '-')}</code>",
            f'<span class="error">{_e(job.error or "")}</span>',
        ]
        for job in report.in_doubt[:TOP_JOBS]
    ]
    commands = [
        "".join(
            f'<code class="command">mailup-jobs jobs resolve {_e(shlex.quote(job.id))} '
            f"{flag}</code>"
            for flag in ("--sent", "--not-sent")
        )
        for job in report.in_doubt[:TOP_JOBS]
    ]
    advice = (
        '<p class="caption">Whatever the period: check each on MailUp\'s side first. '
        "<code>--sent</code> if it went out (with <code>--delivery-id N</code> for an SMS), "
        "<code>--not-sent</code> queues it again.</p>"
    )
    table = _table(["job", "in doubt for", "code", "MailUp said"], rows, details=commands)
    return advice + table + _more(report.in_doubt[TOP_JOBS:], "jobs", "jobs in-doubt")


def _paused(report: Report) -> str:
    if not report.paused:
        return _empty("No channel is paused.", positive=True)
    rows, commands = [], []
    for pause in report.paused:
        channel = pause.scope.split(":", 1)[0]  # resuming the channel resumes its lists too
        resume = f"mailup-jobs accounts resume --account {shlex.quote(pause.account)}"
        commands.append(f'<code class="command">{_e(resume)} --channel {_e(channel)}</code>')
        until = _when(pause.until) if pause.until else "a probe, or resume"
        rows.append(
            [
                _e(pause.account),
                f"<code>{_e(pause.scope)}</code>",
                _e(pause.reason),
                f'<span class="when">{_e(_when(pause.since))}</span>',
                f'<span class="when">{_e(until)}</span>',
            ]
        )
    header = ["account", "channel", "reason", "since", "until"]
    return _table(header, rows, details=commands)


# --- charts: inline SVG, a <title> on every bar for its tooltip ------------------------------


@dataclass(frozen=True)
class Series:
    name: str
    colour: str
    # By day, for columns (a Bar holds its own values), and more to say of a day's value.
    values: Mapping[str, float] = field(default_factory=dict)
    notes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Bar:
    """One row of a horizontal bar chart: its label, a value per series, the text beside it."""

    label: str
    values: Mapping[str, float]
    note: str
    tooltip: str = ""


WIDTH, HEIGHT = 520, 250
LEFT, RIGHT, TOP, BOTTOM = 52, 14, 22, 44


def _columns(
    name: str, days: list[str], series: list[Series], unit: str, *, width: int = WIDTH
) -> str:
    """Stacked columns, one a day, the first series at the bottom; ``unit`` is singular."""
    plot_w, plot_h = width - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    totals = [sum(s.values.get(day, 0) for s in series) for day in days]
    top, ticks = _scale(max(totals, default=0), integers=unit == "job")
    slot = plot_w / len(days)
    bar = min(slot * 0.72, 56.0) if slot >= 6 else max(slot - 0.5, 0.5)
    base = TOP + plot_h

    def y(value: float) -> float:
        return base - value / top * plot_h

    out = [_grid(ticks, y, LEFT, width - RIGHT)]
    for i, day in enumerate(days):
        x = LEFT + i * slot + (slot - bar) / 2
        height = 0.0
        for s in series:
            value = s.values.get(day, 0)
            if not value:
                continue
            shown = f"{_short(day)}: {s.name}, {_count(value, unit)}"
            if note := s.notes.get(day):
                shown += f" {note}"
            top_y = y(height + value)
            out.append(
                f'<rect class="bar" x="{x:.2f}" y="{top_y:.2f}" width="{bar:.2f}" '
                f'height="{y(height) - top_y:.2f}" fill="{s.colour}" data-day="{day}" '
                f'data-series="{_e(s.name)}" data-value="{_raw(value)}">'
                f"<title>{_e(shown)}</title></rect>"
            )
            height += value
        if totals[i] and slot >= 22:
            out.append(
                f'<text class="total" x="{x + bar / 2:.2f}" y="{y(totals[i]) - 4:.2f}" '
                f'text-anchor="middle">{_number(totals[i])}</text>'
            )
    every = max(1, math.ceil(len(days) * 46 / plot_w))  # a label each 46 px at least
    for i in range(0, len(days), every):
        x = LEFT + (i + 0.5) * slot
        out.append(
            f'<text class="tick day" x="{x:.2f}" y="{base + 16}" text-anchor="middle" '
            f'data-day="{days[i]}">{_short(days[i])}</text>'
        )
    out.append(
        f'<line class="axis" x1="{LEFT}" x2="{width - RIGHT}" y1="{base}" y2="{base}"/>'
        f'<text class="label" x="{LEFT + plot_w / 2:.0f}" y="{HEIGHT - 6}" '
        'text-anchor="middle">day (UTC)</text>'
        f'<text class="label" transform="translate(13 {TOP + plot_h / 2:.0f}) rotate(-90)" '
        f'text-anchor="middle">{unit}s</text>'
    )
    described = f"{unit}s per day, {_short(days[0])} to {_short(days[-1])}"
    return _svg(name, width, HEIGHT, described, out)


def _bars(name: str, rows: list[Bar], series: list[Series], unit: str) -> str:
    """Horizontal stacked bars, one a row, the largest first, their value beside them;
    ``unit`` is singular."""
    label_w, note_w, row_h = 140, 160, 26
    height = TOP + len(rows) * row_h + 30
    plot_w = WIDTH - label_w - note_w
    peak = max(sum(r.values.values()) for r in rows) or 1
    out = []
    for i, row in enumerate(rows):
        y = TOP + i * row_h
        label = row.label if len(row.label) <= 20 else row.label[:19] + "…"
        out.append(
            f'<text class="tick" x="{label_w - 8}" y="{y + row_h / 2 + 4:.1f}" '
            f'text-anchor="end">{_e(label)}<title>{_e(row.label)}</title></text>'
        )
        x = float(label_w)
        for s in series:
            value = row.values.get(s.name, 0)
            if not value:
                continue
            w = value / peak * plot_w
            shown = f"{row.label}: {_count(value, unit)} {s.name}"
            if row.tooltip:
                shown += f" — {row.tooltip}"
            out.append(
                f'<rect class="bar" x="{x:.2f}" y="{y + 4}" width="{w:.2f}" '
                f'height="{row_h - 8}" fill="{s.colour}" data-row="{_e(row.label)}" '
                f'data-series="{_e(s.name)}" data-value="{_raw(value)}">'
                f"<title>{_e(shown)}</title></rect>"
            )
            x += w
        out.append(
            f'<text class="note" x="{x + 6:.2f}" y="{y + row_h / 2 + 4:.1f}">{_e(row.note)}</text>'
        )
    base = TOP + len(rows) * row_h
    out.append(
        f'<line class="axis" x1="{label_w}" x2="{label_w}" y1="{TOP}" y2="{base}"/>'
        f'<text class="label" x="{label_w + plot_w / 2:.0f}" y="{base + 22}" '
        f'text-anchor="middle">{unit}s</text>'
    )
    return _svg(name, WIDTH, height, f"{unit}s per row, the largest first", out)


def _svg(name: str, width: int, height: int, described: str, parts: Iterable[str]) -> str:
    return (
        f'<svg class="chart" id="chart-{name}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{_e(described)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{_e(described)}</title>{''.join(parts)}</svg>"
    )


def _grid(ticks: list[float], y: Callable[[float], float], left: int, right: int) -> str:
    return "".join(
        f'<line class="grid" x1="{left}" x2="{right}" y1="{y(t):.2f}" y2="{y(t):.2f}"/>'
        f'<text class="tick" x="{left - 6}" y="{y(t) + 4:.2f}" text-anchor="end">'
        f"{_number(t)}</text>"
        for t in ticks
    )


def _scale(peak: float, *, integers: bool) -> tuple[float, list[float]]:
    """A round top for an axis from 0 and its ticks, about four steps of 1, 2 or 5 × 10ⁿ."""
    if peak <= 0:
        return 1.0, [0.0, 1.0]
    raw = peak / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    if integers:
        step = max(step, 1)
    steps = math.ceil(peak / step - 1e-9)
    return steps * step, [i * step for i in range(steps + 1)]


def _legend(series: list[Series]) -> str:
    items = "".join(
        f'<li><span class="swatch" style="background:{s.colour}"></span>{_e(s.name)}</li>'
        for s in series
    )
    return f'<ul class="legend">{items}</ul>'


# --- small helpers ---------------------------------------------------------------------------


def _axis(report: Report) -> list[str]:
    """Every day from ``since`` (or the first day with rows) to ``until`` (or today), so quiet
    days show as gaps."""
    seen = {d.day for d in report.sends} | {str(c.group) for c in report.costs_by_day}
    if not seen:
        return []
    since, until = report.period.since, report.period.until
    first = since.date() if since else date.fromisoformat(min(seen))
    last = (until - timedelta(microseconds=1)).date() if until else report.generated_at.date()
    last = max(last, date.fromisoformat(max(seen)))
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def _period_text(period: Period) -> str:
    start = _bound(period.since) if period.since else "the first job"
    if period.until is None:
        end = "now"
    elif period.until.astimezone(UTC).time() == time():  # a date, included whole
        end = (period.until - timedelta(days=1)).date().isoformat()
    else:
        end = f"before {_bound(period.until)}"
    return f"{start} to {end}"


def _bound(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.date().isoformat() if moment.time() == time() else f"{moment:%Y-%m-%d %H:%M}"


def _when(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _age(delta: timedelta) -> str:
    minutes = max(int(delta.total_seconds() // 60), 0)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // (24 * 60)} days"


def _short(day: str) -> str:
    value = date.fromisoformat(day)
    return f"{value:%b} {value.day}"


def _campaign(code: object) -> str:
    return "no campaign code" if code is None else str(code)


def _more(rest: Sequence[object], what: str, command: str) -> str:
    if not rest:
        return ""
    return f'<p class="caption">and {len(rest)} more {what}: <code>mailup-jobs {command}</code></p>'


def _table(
    header: list[str],
    rows: list[list[str]],
    numeric: Collection[int] = (),
    details: list[str] | None = None,
) -> str:
    """A table of HTML cells; ``details``, a full-width line under each row."""

    def cell(tag: str, i: int, content: str) -> str:
        return (
            f'<{tag} class="num">{content}</{tag}>' if i in numeric else f"<{tag}>{content}</{tag}>"
        )

    def row(i: int, cells: list[str]) -> str:
        shown = "".join(cell("td", n, c) for n, c in enumerate(cells))
        if details is None:
            return f"<tr>{shown}</tr>"
        detail = f'<tr class="detail"><td colspan="{len(header)}">{details[i]}</td></tr>'
        return f'<tbody class="pair"><tr>{shown}</tr>{detail}</tbody>'

    head = "".join(cell("th", i, _e(h)) for i, h in enumerate(header))
    body = "".join(row(i, cells) for i, cells in enumerate(rows))
    if details is None:
        body = f"<tbody>{body}</tbody>"
    table = f"<table><thead><tr>{head}</tr></thead>{body}</table>"
    return f'<div class="scroll">{table}</div>'


def _empty(text: str = NOTHING, *, positive: bool = False) -> str:
    return f'<p class="empty{" ok" if positive else ""}">{_e(text)}</p>'


def _caption(text: str) -> str:
    return f'<p class="caption">{_e(text)}</p>'


def _e(text: str) -> str:
    return escape(text, quote=True)


def _count(value: float, one: str, many: str | None = None) -> str:
    """1 credit, 2 credits, 1.5 credits."""
    return f"{_number(value)} {one if value == 1 else many or one + 's'}"


def _number(value: float) -> str:
    """1,234 or 12.5: no ".0", two decimals at most."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def _raw(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _pause_dict(pause: Pause) -> dict[str, Any]:
    return {
        "account": pause.account,
        "channel": pause.scope,
        "reason": pause.reason,
        "since": pause.since.isoformat(),
        "until": _iso(pause.until),
    }


CSS = """
:root { color-scheme: light; --ink: #1d2430; --muted: #5b6472; --line: #e3e6ea; }
* { box-sizing: border-box; }
body { margin: 0; background: #f4f5f7; color: var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; }
header { background: #1d2430; color: #fff; padding: 22px 32px 18px; }
h1 { margin: 0 0 4px; font-size: 20px; font-weight: 600; letter-spacing: .2px; }
.period { margin: 0 0 16px; color: #c9ced6; }
.period strong { color: #fff; }
.totals { display: grid; grid-template-columns: repeat(auto-fit, minmax(118px, 1fr));
  gap: 10px; margin: 0; }
.tile { display: flex; flex-direction: column-reverse; background: rgba(255,255,255,.08);
  border-radius: 8px; padding: 10px 12px; }
.tile dd { margin: 0; font-size: 24px; font-weight: 600; font-variant-numeric: tabular-nums; }
.tile dt { color: #c9ced6; font-size: 12px; }
.tile.alert { background: #7a3b00; }
.nothing { margin: 16px 0 0; padding: 10px 14px; border-radius: 8px; background: #fff3cd;
  color: #5c4400; font-weight: 600; }
.grid { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 18px;
  padding: 20px 32px 32px; max-width: 1180px; margin: 0 auto; }
.card { background: #fff; border-radius: 10px; padding: 16px 18px;
  box-shadow: 0 1px 2px rgba(20,30,40,.08), 0 2px 8px rgba(20,30,40,.04); min-width: 0; }
.card.wide { grid-column: 1 / -1; }
h2 { margin: 0 0 10px; font-size: 15px; font-weight: 600; }
.chart { display: block; width: 100%; height: auto; }
.chart text { font-size: 11px; fill: var(--muted); }
.chart text.label { font-size: 12px; fill: var(--ink); }
.chart text.total, .chart text.note { fill: var(--ink); }
.chart .grid { stroke: var(--line); }
.chart .axis { stroke: #9aa3ae; }
.chart rect.bar { stroke: #fff; stroke-width: .5; }
.chart rect.bar:hover { opacity: .75; }
.legend { list-style: none; display: flex; flex-wrap: wrap; gap: 4px 16px; margin: 0 0 6px;
  padding: 0; font-size: 12px; color: var(--muted); }
.swatch { display: inline-block; width: 11px; height: 11px; border-radius: 2px;
  margin-right: 6px; vertical-align: -1px; }
.caption { margin: 6px 0 0; color: var(--muted); font-size: 12px; }
.empty { margin: 8px 0; padding: 26px 12px; text-align: center; color: var(--muted);
  background: #f7f8fa; border: 1px dashed var(--line); border-radius: 8px; }
.empty.ok { color: #00684a; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: 12px; white-space: nowrap; }
.when { white-space: nowrap; }
tbody.pair tr:first-child td { border-bottom: none; padding-bottom: 2px; }
tr.detail td { padding-top: 2px; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody:not(.pair) tr:nth-child(even), tbody.pair:nth-of-type(even) { background: #fafbfc; }
code { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
code.id { white-space: nowrap; }
.sub { color: var(--muted); font-size: 12px; white-space: nowrap; }
code.command { display: inline-block; white-space: nowrap; user-select: all;
  background: #f1f3f5; padding: 2px 8px; border-radius: 4px; margin: 2px 8px 2px 0; }
.error { color: var(--muted); }
@media (max-width: 800px) { .grid { grid-template-columns: 1fr; padding: 14px; } }
@media print { body { background: #fff; } .card { box-shadow: none; border: 1px solid #ddd; } }
"""

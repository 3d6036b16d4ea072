"""Celery beat for mailup-jobs: what runs when, and a scheduler that runs it in beat itself.

The schedule is kept in memory and rebuilt from the settings at each start: there is no
schedule file to go missing or corrupt, and every entry is an interval that may simply
run once more after a restart. Each entry runs in the beat process rather than through the
broker, so the sweeper works when the broker has lost everything (it is the one that
repairs that) and never waits behind a backlog of jobs.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery import beat

from worker import tasks
from worker.jobs.registry import POLLS
from worker.settings import Settings, get_settings

log = logging.getLogger(__name__)

DAY = 86400.0


def schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    entries: dict[str, dict[str, Any]] = {
        "sweep": {"task": tasks.sweep.name, "schedule": settings.sweep_interval},
        "probe-pauses": {"task": tasks.probe_pauses.name, "schedule": settings.sweep_interval},
    }
    for name, poll in POLLS.items():
        entries[f"poll-{name}"] = {
            "task": tasks.poll.name,
            "schedule": poll.every(settings),
            "args": (name,),
        }
    if settings.retention_days:
        entries["purge"] = {"task": tasks.purge.name, "schedule": DAY}
    return entries


class Scheduler(beat.Scheduler):  # type: ignore[misc]
    """In memory, from ``schedule``; each due entry runs here, in this process."""

    def setup_schedule(self) -> None:
        entries = schedule(get_settings())
        for entry in entries.values():
            # Due at once: a (re)started beat sweeps, and marks the broker, straight away.
            entry["last_run_at"] = self.app.now() - timedelta(seconds=entry["schedule"])
        self.merge_inplace(entries)

    def apply_entry(self, entry: Any, producer: Any = None) -> None:
        task = self.app.tasks[entry.task]
        try:
            result = task(*entry.args, **entry.kwargs)
        except Exception:
            log.exception("beat: %s failed; it runs again at its next interval", entry.name)
        else:
            log.info("beat: %s: %s", entry.name, result)

"""Celery beat for mailup-jobs: what runs when, and a scheduler that runs it in beat itself.

The schedule is kept in memory and rebuilt from the settings at each start: there is no
schedule file to go missing or corrupt, and every entry is an interval that may simply
run once more after a restart. Each entry runs in the beat process rather than through the
broker, so the sweeper works when the broker has lost everything (it is the one that
repairs that) and never waits behind a backlog of jobs.

Each entry runs on a thread of its own, so none waits behind another: a poll held up by a
slow MailUp (or by its account's share of the 5 calls per second) delays neither the
sweeper nor the dispatch of due schedules. An entry still running when it is due again
skips that turn rather than run twice at once.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Any

from celery import beat

from worker import tasks
from worker.engine import sweeper
from worker.jobs.registry import POLLS
from worker.settings import Settings, get_settings

log = logging.getLogger(__name__)

DAY = 86400.0
# An entry option: a run that did nothing is logged at debug level only.
QUIET_WHEN_IDLE = "quiet_when_idle"


def schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    entries: dict[str, dict[str, Any]] = {
        "sweep": {"task": tasks.sweep.name, "schedule": settings.sweep_interval},
        # Dead workers' jobs handed to others within seconds, not a sweep interval.
        "recover-lost": {
            "task": tasks.recover_lost.name,
            "schedule": sweeper.RECOVER_EVERY,
            "options": {QUIET_WHEN_IDLE: True},  # every 3 s: logged when it did something
        },
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
    """In memory, from ``schedule``; each due entry runs here, in this process, on its own
    thread."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._running: dict[str, threading.Thread] = {}
        super().__init__(*args, **kwargs)

    def setup_schedule(self) -> None:
        entries = schedule(get_settings())
        for entry in entries.values():
            # Due at once: a (re)started beat sweeps, and marks the broker, straight away.
            entry["last_run_at"] = self.app.now() - timedelta(seconds=entry["schedule"])
        self.merge_inplace(entries)

    def apply_entry(self, entry: Any, producer: Any = None) -> None:
        running = self._running.get(entry.name)
        if running is not None and running.is_alive():
            log.warning("beat: %s is still running: this turn skipped", entry.name)
            return
        # A daemon: stopping beat does not wait for a MailUp call; what an entry leaves
        # half done, its next run (or the sweeper) finishes.
        thread = threading.Thread(
            target=self._run, args=(entry,), name=f"beat-{entry.name}", daemon=True
        )
        self._running[entry.name] = thread
        thread.start()

    def _run(self, entry: Any) -> None:
        task = self.app.tasks[entry.task]
        try:
            result = task(*entry.args, **entry.kwargs)
        except Exception:
            log.exception("beat: %s failed; it runs again at its next interval", entry.name)
        else:
            idle = isinstance(result, dict) and not any(result.values())
            quiet = idle and entry.options.get(QUIET_WHEN_IDLE)
            log.log(logging.DEBUG if quiet else logging.INFO, "beat: %s: %s", entry.name, result)

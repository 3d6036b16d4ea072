"""``manage.py mailup_jobs ARGS``: the ``mailup-jobs`` command line with the project's
``MAILUP_JOBS`` settings, e.g. ``manage.py mailup_jobs jobs show ID`` or
``manage.py mailup_jobs worker`` (``manage.py mailup_jobs -- --help`` lists the commands)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Run a mailup-jobs command (e.g. `jobs show ID`) with the MAILUP_JOBS settings."
    # Its own `check` and `migrate` must run whatever the system checks say.
    requires_system_checks = ()

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("arguments", nargs=argparse.REMAINDER, help="a mailup-jobs command")

    def handle(self, *args: Any, **options: Any) -> None:
        from producers.cli import main

        argv = sys.argv
        sys.argv = ["manage.py mailup_jobs", *options["arguments"]]
        try:
            main()
        except SystemExit as done:
            if done.code not in (0, None):
                raise
        finally:
            sys.argv = argv

"""Watching the system: ``mailup-jobs metrics``, Prometheus metrics read from the ledger."""

from __future__ import annotations

import click


@click.command()
@click.option("--port", default=9808, show_default=True, type=int)
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
def metrics(port: int, host: str) -> None:
    """Serve Prometheus metrics at /metrics, read from the ledger at each scrape: the
    workers of every host write there, so one metrics process sees them all."""
    from worker import logs
    from worker.jobs.registry import KINDS
    from worker.metrics import serve
    from worker.settings import get_settings

    settings = get_settings()
    logs.configure(settings)
    try:
        serve(settings.ledger_url, KINDS, host=host, port=port)
    except OSError as exc:  # the port is taken, or the address is not this host's
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None

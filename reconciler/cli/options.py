"""Options more than one command takes, defined once."""

from __future__ import annotations

import click

lock_timeout_option = click.option(
    "--lock-timeout",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    help="Seconds to wait for the lock.",
)

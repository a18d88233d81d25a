"""A backfill stand-in: walks a range of days."""

import os

try:
    from prefect import flow
except ImportError:  # the image needs no Prefect: without it the decorator is a no-op

    def flow(fn=None, **_options):
        return fn if fn is not None else (lambda f: f)


@flow
def backfill(days: int = 7) -> int:
    """Recompute the last DAYS days."""
    level = os.environ.get("LOG_LEVEL", "INFO")
    for day in range(days):
        print(f"[{level}] recomputing day -{day + 1}", flush=True)
    print(f"[{level}] backfilled {days} days", flush=True)
    return days

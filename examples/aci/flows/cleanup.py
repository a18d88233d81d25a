"""A Prefect flow where Prefect is installed (so `prefect deploy` takes it), a plain function in an
image without Prefect (the reconciler's runtime calls it as is)."""

import datetime

try:
    from prefect import flow
except ImportError:  # the image needs no Prefect: without it the decorator is a no-op

    def flow(fn=None, **_options):
        return fn if fn is not None else (lambda f: f)


@flow
def purge_expired(older_than_hours: int = 24) -> int:
    """Pretend to delete reservations older than OLDER_THAN_HOURS."""
    cutoff = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=older_than_hours)
    print(f"purging reservations made before {cutoff:%Y-%m-%d %H:%M} UTC", flush=True)
    purged = 7
    print(f"purged {purged} reservations", flush=True)
    return purged

"""A plain function is a flow for `reconcile run`; decorate it with Prefect's @flow if you like."""

import datetime


def purge_expired(older_than_hours: int = 24) -> int:
    """Pretend to delete reservations older than OLDER_THAN_HOURS."""
    cutoff = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=older_than_hours)
    print(f"purging reservations made before {cutoff:%Y-%m-%d %H:%M} UTC", flush=True)
    purged = 7
    print(f"purged {purged} reservations", flush=True)
    return purged

"""A plain function is a flow for `reconcile run`; decorate it with Prefect's @flow if you like."""

import datetime


def nightly_report() -> dict:
    """Pretend to summarise yesterday."""
    day = datetime.date.today() - datetime.timedelta(days=1)
    summary = {"day": day.isoformat(), "orders": 42}
    print(f"report for {summary['day']}: {summary['orders']} orders", flush=True)
    return summary

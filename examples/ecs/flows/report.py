"""A Prefect flow where Prefect is installed (so `prefect deploy` takes it), a plain function in an
image without Prefect (the reconciler's runtime calls it as is)."""

import datetime

try:
    from prefect import flow
except ImportError:  # the image needs no Prefect: without it the decorator is a no-op

    def flow(fn=None, **_options):
        return fn if fn is not None else (lambda f: f)


@flow
def nightly_report() -> dict:
    """Pretend to summarise yesterday."""
    day = datetime.date.today() - datetime.timedelta(days=1)
    summary = {"day": day.isoformat(), "orders": 42}
    print(f"report for {summary['day']}: {summary['orders']} orders", flush=True)
    return summary

"""A daily report stand-in: prints what it would compute."""

import os

try:
    from prefect import flow
except ImportError:  # the image needs no Prefect: without it the decorator is a no-op

    def flow(fn=None, **_options):
        return fn if fn is not None else (lambda f: f)


@flow
def sales_report(region: str = "emea") -> dict[str, int]:
    """Summarise yesterday's sales for REGION."""
    job = os.environ.get("CLOUD_RUN_EXECUTION", "local")
    print(f"sales report for {region} (Cloud Run execution {job})", flush=True)
    totals = {"orders": 1280, "refunds": 14}
    print(f"totals: {totals}", flush=True)
    return totals

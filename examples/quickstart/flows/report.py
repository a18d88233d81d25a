"""A Prefect flow: with Prefect installed it runs through Prefect's engine; the name comes from @flow."""

try:
    from prefect import flow
except ImportError:  # without Prefect the decorator is a no-op and the function runs as is

    def flow(fn=None, **_options):
        return fn if fn is not None else (lambda f: f)


@flow(name="daily-report")
def daily_report(day: str = "today") -> int:
    """Build the daily report (a stand-in that counts to three)."""
    total = sum(range(1, 4))
    print(f"report for {day}: {total} rows", flush=True)
    return total

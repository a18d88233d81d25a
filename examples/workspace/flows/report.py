"""Sends the daily report: run by the ``report-after-load`` automation when a load completes."""

try:
    from prefect import flow
except ImportError:  # without Prefect the decorator is a no-op and the function runs as is

    def flow(fn=None, **_options):
        return fn if fn is not None else (lambda f: f)


@flow(name="send-report")
def send_report(audience: str = "ops", rows: int = 0) -> str:
    """Send the report to AUDIENCE (a stand-in that prints it).

    Args:
        audience: who receives the report
        rows: rows loaded by the run that triggered this one
    """
    message = f"report for {audience}: {rows} rows loaded"
    print(message, flush=True)
    return message

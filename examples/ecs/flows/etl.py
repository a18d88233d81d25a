"""Extract-transform-load stand-in: prints what it would do with its parameters."""

import os

try:
    from prefect import flow
except ImportError:  # the image needs no Prefect: without it the decorator is a no-op

    def flow(fn=None, **_options):
        return fn if fn is not None else (lambda f: f)


@flow
def etl(source: str, rows: int = 100) -> int:
    """Load ROWS rows from SOURCE."""
    level = os.environ.get("LOG_LEVEL", "INFO")
    print(f"[{level}] loading {rows} rows from {source}", flush=True)
    for batch in range(0, rows, max(rows // 4, 1)):
        print(f"[{level}] batch at row {batch}", flush=True)
    print(f"[{level}] done: {rows} rows", flush=True)
    return rows

"""Loads the warehouse: the deployment that holds the shared ``warehouse`` limit and whose completion
triggers the report (see ``automations:`` in prefect.yaml)."""

try:
    from prefect import flow
except ImportError:  # without Prefect the decorator is a no-op and the function runs as is

    def flow(fn=None, **_options):
        return fn if fn is not None else (lambda f: f)


@flow(name="load-warehouse")
def load_warehouse(region: str = "eu-west-1", rows: int = 100) -> int:
    """Load ROWS rows into the warehouse of REGION (a stand-in that prints what it would do).

    Args:
        region: the warehouse's region; the deployment reads it from the `warehouse_region` variable
        rows: how many rows to load
    """
    print(f"loading {rows} rows into the {region} warehouse", flush=True)
    return rows

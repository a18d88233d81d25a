"""Inventory sync stand-in: prints what it would do with its parameters."""

import os

try:
    from prefect import flow
except ImportError:  # the image needs no Prefect: without it the decorator is a no-op

    def flow(fn=None, **_options):
        return fn if fn is not None else (lambda f: f)


@flow
def sync_inventory(warehouse: str, limit: int = 100) -> int:
    """Sync up to LIMIT items of WAREHOUSE."""
    level = os.environ.get("LOG_LEVEL", "INFO")
    token = "set" if os.environ.get("INVENTORY_API_TOKEN") else "missing"
    print(f"[{level}] syncing {limit} items of {warehouse} (API token {token})", flush=True)
    for start in range(0, limit, max(limit // 4, 1)):
        print(f"[{level}] items {start}..{min(start + max(limit // 4, 1), limit) - 1}", flush=True)
    print(f"[{level}] done: {limit} items", flush=True)
    return limit

"""``--state prefect+http(s)://HOST/api`` (or ``prefect://``): the store on a Prefect server.

The implementation is split by concern: ``prefect_client`` (HTTP, auth, retries, request count),
``prefect_mapping`` (server objects <-> canonical bodies), ``prefect_values`` (secrets and block
references), ``prefect_inventory`` (what the server cannot hold, in Variables), ``prefect_objects`` and
``prefect_writers`` (reading and writing pools, deployments, blocks), ``prefect_lock`` (the apply
lease), ``prefect_runs`` (runs as flow runs), ``prefect_history`` (applies as artifacts) and
``prefect_store`` (the Store itself).
"""

from reconciler.state.prefect.store import PrefectStore

__all__ = ["PrefectStore"]

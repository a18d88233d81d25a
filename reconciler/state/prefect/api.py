"""``--state prefect+http(s)://HOST/api`` (or ``prefect://``): the store on a Prefect server.

The implementation is split by concern, one module each: ``client`` (HTTP, auth, retries, request
count), ``mapping`` (server objects <-> canonical bodies), ``values`` (secrets and block references),
``inventory`` and ``variables`` (what the server cannot hold, in Variables), ``objects`` and
``writers`` (reading and writing pools, deployments, blocks), ``lock`` (the apply lease), ``runs``
(runs as flow runs), ``history`` (applies as artifacts) and ``store`` (the Store itself).
"""

from reconciler.state.prefect.store import PrefectStore

__all__ = ["PrefectStore"]

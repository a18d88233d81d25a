"""prefect-reconciler: a declarative GitOps reconciler for Prefect work pools, deployments and push runs.

Layers, top to bottom (each imports only downward, enforced by import-linter):
cli -> triggers -> launch -> apply -> plan | state -> spec -> pooltypes -> objects, errors.
"""

__version__ = "0.1.0"

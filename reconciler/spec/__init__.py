"""DESIRED: read ``prefect.yaml`` (from disk or a Git commit) into canonical resources.

Facade: ``spec.load(tree, file, environ=..., fingerprint_key=...) -> Desired``.
"""

from reconciler.spec.desired import Desired, Reference, RuleKind, RunRule, SourceInfo
from reconciler.spec.load import load, project_of
from reconciler.spec.source import GitInfo, SourceTree, WorkingTree
from reconciler.spec.templating import fingerprint, is_sensitive_env, step_output_source

__all__ = [
    "Desired",
    "GitInfo",
    "Reference",
    "RuleKind",
    "RunRule",
    "SourceInfo",
    "SourceTree",
    "WorkingTree",
    "fingerprint",
    "is_sensitive_env",
    "load",
    "project_of",
    "step_output_source",
]

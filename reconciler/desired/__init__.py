"""DESIRED: read ``prefect.yaml`` (from disk or a Git commit) into canonical resources.

Facade: ``desired.load(tree, file, environ=..., fingerprint_key=...) -> Desired``.
"""

from reconciler.desired.desired import Desired, Reference, RuleKind, RunRule, SourceInfo
from reconciler.desired.gitsource import (
    ZERO_SHA,
    ChangeType,
    FileChange,
    GitRepo,
    GitSourceError,
    GitTree,
    detect,
)
from reconciler.desired.load import load, project_of
from reconciler.desired.sandbox import SHARED_KINDS, check_prefix, in_sandbox, sandbox, sandboxed_name
from reconciler.desired.source import GitInfo, SourceTree, WorkingTree
from reconciler.desired.templating import (
    RESERVED_ENV,
    fingerprint,
    is_reserved_env,
    is_sensitive_env,
    public_env_names,
    step_output_source,
)

__all__ = [
    "RESERVED_ENV",
    "SHARED_KINDS",
    "ZERO_SHA",
    "ChangeType",
    "Desired",
    "FileChange",
    "GitInfo",
    "GitRepo",
    "GitSourceError",
    "GitTree",
    "Reference",
    "RuleKind",
    "RunRule",
    "SourceInfo",
    "SourceTree",
    "WorkingTree",
    "check_prefix",
    "detect",
    "fingerprint",
    "in_sandbox",
    "is_reserved_env",
    "is_sensitive_env",
    "load",
    "project_of",
    "public_env_names",
    "sandbox",
    "sandboxed_name",
    "step_output_source",
]

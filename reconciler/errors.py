"""One error tree for the whole tool.

Every layer raises a subclass of :class:`ReconcileError`; foreign exceptions (botocore, SQLAlchemy,
httpx, ...) are translated where their library is imported. The CLI prints ``str(exc)`` as a single
``error: ...`` line (or the diagnostics of a :class:`SpecError`) and exits 1; a traceback only appears
with ``RECONCILE_DEBUG=1``. Messages must never contain a secret value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class ReconcileError(Exception):
    """Base of every error this tool reports to a user."""


@dataclass(frozen=True)
class Diagnostic:
    """One problem in the desired-state file, located like a compiler error."""

    file: str
    line: int  # 1-based
    col: int  # 1-based
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


class SpecError(ReconcileError):
    """The desired state is invalid. Carries every problem found, not only the first, and the
    warnings found with them (shown beside the errors: "did you mean 'tags'?" may be the fix)."""

    def __init__(self, diagnostics: Sequence[Diagnostic], warnings: Sequence[Diagnostic] = ()) -> None:
        self.diagnostics = _sorted(diagnostics)
        self.warnings = _sorted(warnings)
        super().__init__("\n".join(str(d) for d in self.diagnostics))

    def report(self) -> tuple[Diagnostic, ...]:
        """Errors and warnings in file order, as a compiler prints them."""
        return _sorted((*self.diagnostics, *self.warnings))


def _sorted(diagnostics: Sequence[Diagnostic]) -> tuple[Diagnostic, ...]:
    return tuple(sorted(diagnostics, key=lambda d: (d.file, d.line, d.col, d.message)))


class UsageError(ReconcileError):
    """The command line asks for something impossible (bad flag combination, bad address...)."""


class StateError(ReconcileError):
    """The stored state cannot be read or written."""


class StaleVersion(StateError):
    """An object changed since the plan was made (per-object optimistic concurrency)."""

    def __init__(self, address: str, expected: int | None, actual: int | None) -> None:
        self.address, self.expected, self.actual = address, expected, actual
        want = "absent" if expected is None else f"version {expected}"
        have = "absent" if actual is None else f"version {actual}"
        super().__init__(
            f"{address} changed since the plan was made (planned against {want}, store has {have})"
        )


class LockTimeout(StateError):
    """Another apply holds the store lock for longer than we agreed to wait."""


class PlanFileError(ReconcileError):
    """A saved plan cannot be read (wrong format version, corrupt, or for another project)."""


class LaunchError(ReconcileError):
    """A run could not be launched or followed.

    ``retryable`` errors (throttling, 5xx) carry an optional ``retry_after`` in seconds.
    """

    def __init__(self, message: str, *, retryable: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class LauncherUnavailable(LaunchError):
    """The pool's launcher cannot run here (its SDK is not installed, or it is not built yet)."""


class LaunchAuthError(LaunchError):
    """The cloud refused our credentials. Names the block, never the secret."""

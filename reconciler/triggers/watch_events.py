"""What a file change means to ``reconcile --watch``: pure decisions, no I/O, no clock of their own.

- :class:`ProjectFilter` drops what no user edit produces: our own state and run logs (``.reconcile/``),
  VCS and cache directories, and editor scratch files (vim's ``*.swp`` and ``4913`` probe, ``*~``
  backups, emacs ``.#lock`` and ``#autosave#``, JetBrains ``___jb_tmp___``).
- :func:`compile_globs` turns ``run_on: watch`` paths into one matcher, with exactly the syntax of
  ``run_on: push`` paths (GitHub's filter patterns, ``triggers.git``): ``*`` stays inside a directory,
  ``**`` crosses directories, and a ``!pattern`` excludes (the last matching pattern wins).
- :func:`spec_files` lists the files the desired state is read from: the file itself and every
  entrypoint's source (flow names come from its syntax tree).
- :class:`Coalescer` turns a burst of saves into one trigger per deployment: a deployment fires once
  its paths have been quiet for ``quiet`` seconds (or ``max_delay`` after the burst began, so a file
  that never stops changing still gets a run).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from reconciler.desired import Desired
from reconciler.engine import gitrules
from reconciler.objects import Kind

IGNORED_DIRS = frozenset(
    {
        ".reconcile",
        ".git",
        ".hg",
        ".svn",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".hypothesis",
        ".tox",
        ".nox",
        ".venv",
        ".idea",
        "node_modules",
    }
)
_SCRATCH = re.compile(
    r"(\.sw[a-z]$)|(~$)|(^\.#)|(^#.*#$)|(^4913$)|(___jb_(tmp|old)___$)|(^\.DS_Store$)|(\.py[cod]$)|(^flycheck_)"
)


PathMatcher = Callable[[str], bool]


def relative(path: str | os.PathLike[str], root: Path) -> str:
    """``path`` relative to the project root, with ``/`` separators (``../x`` when outside)."""
    return PurePosixPath(os.path.relpath(path, root).replace(os.sep, "/")).as_posix()


@dataclass(frozen=True)
class ProjectFilter:
    """Which changed paths are the user's edits. ``ignored`` are extra paths (the SQLite state file)."""

    root: Path
    ignored: tuple[str, ...] = ()  # relative paths; a path equal to or starting with one is dropped
    outside: frozenset[str] = frozenset()  # the only relative paths outside the root worth watching

    def wanted(self, path: str | os.PathLike[str]) -> str | None:
        """The relative path if this change matters, else None."""
        rel = relative(path, self.root)
        if rel.startswith("../") or rel == "..":
            return rel if rel in self.outside else None
        parts = rel.split("/")
        if any(part in IGNORED_DIRS for part in parts[:-1]) or parts[-1] in IGNORED_DIRS:
            return None
        if _SCRATCH.search(parts[-1]):
            return None
        if any(rel == p or rel.startswith(p) for p in self.ignored):
            return None
        return rel


def state_files(url: str, root: Path) -> tuple[str, ...]:
    """A SQLite state file inside the project (and its journals) is ours, never a user's edit."""
    scheme, sep, rest = url.partition(":///")
    if not sep or scheme.split("+")[0] != "sqlite":
        return ()
    rel = relative(os.path.realpath(rest.split("?")[0]), root)
    return () if rel.startswith("..") else (rel,)


def describe(paths: list[str]) -> str:
    """``a, b, c (+2 more) changed``: what a batch touched, for the loop's log line."""
    shown = ", ".join(paths[:3])
    more = f" (+{len(paths) - 3} more)" if len(paths) > 3 else ""
    return f"{shown}{more} changed"


def _clean(pattern: str) -> str:
    """``./flows/**`` and ``flows/**`` are the same pattern (the ``!`` of an exclusion is kept)."""
    pattern = pattern.strip()
    negate = pattern.startswith("!")
    body = pattern[1:] if negate else pattern
    while body.startswith("./"):
        body = body[2:]
    return ("!" if negate else "") + (body.lstrip("/") or "**")


def compile_globs(patterns: Iterable[str]) -> PathMatcher:
    """A matcher for relative paths with the same filter syntax as ``run_on: push`` paths (GitHub's)."""
    cleaned = tuple(_clean(p) for p in patterns)
    return lambda path: gitrules.selected_by(cleaned, path) is not None


def entrypoint_files(entrypoint: str) -> tuple[str, ...]:
    """The source files an entrypoint may live in (``path.py:func`` or ``package.module.func``)."""
    if ":" in entrypoint:
        return (_clean(entrypoint.rpartition(":")[0]),)
    module = entrypoint.rpartition(".")[0]
    if not module:
        return ()
    base = module.replace(".", "/")
    return (f"{base}.py", f"{base}/__init__.py")


def spec_files(desired: Desired | None, file: str) -> frozenset[str]:
    """Relative paths whose change may change the desired state."""
    files = {file}
    if desired is not None:
        for resource in desired.of_kind(Kind.DEPLOYMENT):
            entrypoint = resource.body.get("entrypoint")
            if isinstance(entrypoint, str):
                files.update(entrypoint_files(entrypoint))
    return frozenset(files)


@dataclass
class _Pending:
    path: str  # the first path of the burst: the run's reason
    first: float
    last: float


class Coalescer:
    """One trigger per key per burst of changes; the caller passes the clock (monotonic seconds)."""

    def __init__(self, *, quiet: float, max_delay: float) -> None:
        self.quiet = quiet
        self.max_delay = max(max_delay, quiet)
        self._pending: dict[str, _Pending] = {}

    def add(self, key: str, path: str, now: float) -> bool:
        """Note a change for ``key``; True when it starts a new burst."""
        pending = self._pending.get(key)
        if pending is None:
            self._pending[key] = _Pending(path, now, now)
            return True
        pending.last = now
        return False

    def due(self, now: float) -> list[tuple[str, str]]:
        """Pop the keys whose burst is over: ``(key, first path)``, in key order."""
        ready = sorted(
            key
            for key, p in self._pending.items()
            if now - p.last >= self.quiet or now - p.first >= self.max_delay
        )
        return [(key, self._pending.pop(key).path) for key in ready]

    def clear(self) -> list[tuple[str, str]]:
        """Pop everything still waiting (at shutdown)."""
        left = sorted((key, p.path) for key, p in self._pending.items())
        self._pending.clear()
        return left

    def __len__(self) -> int:
        return len(self._pending)

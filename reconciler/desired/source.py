"""Where the desired state is read from: the working tree, or a Git commit (plan at a ref, the triggers).

The loader reads ``prefect.yaml`` and the flow files its entrypoints name through one small
protocol, so planning at a Git ref reads everything from that commit without a checkout.

Every read goes through one rule, :func:`confine`: the path, with every symbolic link followed,
must lie inside the project's Git work tree (or the project directory when there is no Git). The
file is written by whoever opened the pull request, so an entrypoint such as ``/etc/x.py:f``,
``../../elsewhere.py:f`` or a symlink out of the checkout is refused before anything is read:
nothing outside the project is ever parsed, and no name found there can appear in a message.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Protocol

from reconciler.errors import ReconcileError


class OutsideProject(ReconcileError):
    """A path the file names resolves (symlinks followed) outside the project's tree."""


def boundary_of(project_dir: Path) -> Path:
    """The top of the Git work tree holding ``project_dir``, else ``project_dir`` itself (resolved)."""
    resolved = Path(project_dir).resolve()
    for directory in (resolved, *resolved.parents):
        if (directory / ".git").exists():
            return directory
    return resolved


def _scope(boundary: Path, root: Path) -> str:
    return "the project's Git work tree" if boundary != root.resolve() else "the project directory"


def confine(root: Path, relpath: str, *, boundary: Path | None = None) -> Path:
    """``root / relpath`` with every symlink followed; :class:`OutsideProject` unless it lies inside
    ``boundary`` (default: :func:`boundary_of` ``root``). The one rule for files read on the file's say-so."""
    boundary = boundary_of(root) if boundary is None else boundary
    lexical = Path(os.path.normpath(Path(root).resolve() / relpath))
    target = (Path(root) / relpath).resolve()
    if target.is_relative_to(boundary):
        return target
    scope = _scope(boundary, Path(root))
    if lexical.is_relative_to(boundary):
        raise OutsideProject(f"{relpath} is a symbolic link that leads outside {scope}")
    raise OutsideProject(f"{relpath} is outside {scope}")


def confine_posix(prefix: str, relpath: str) -> str:
    """The same rule inside a Git commit: ``relpath`` (relative to the project at ``prefix``) as a
    repository path; :class:`OutsideProject` when it is absolute or climbs out of the repository."""
    if posixpath.isabs(relpath) or os.path.isabs(relpath):
        raise OutsideProject(f"{relpath} is outside the project's Git work tree")
    path = posixpath.normpath(posixpath.join(prefix, relpath.replace(os.sep, "/")))
    if path == ".." or path.startswith("../"):
        raise OutsideProject(f"{relpath} is outside the project's Git work tree")
    return path


@dataclass(frozen=True)
class GitInfo:
    """The commit the desired state was read at (shown in plans, recorded by apply)."""

    commit: str
    ref: str | None = None
    dirty: bool = False


class SourceTree(Protocol):
    """Read-only access to the project's files."""

    root: Path  # the project directory on disk (display, and the base for relative paths)
    git: GitInfo | None

    def read_text(self, relpath: str) -> str:
        """The file's text; FileNotFoundError when absent, OutsideProject when outside the tree."""
        ...

    def is_file(self, relpath: str) -> bool: ...

    def cache_key(self, relpath: str) -> tuple[object, ...] | str:
        """Changes whenever the file's content may have changed (mtime for disk, blob sha for git)."""
        ...


@dataclass(frozen=True)
class WorkingTree:
    """The project directory on disk."""

    root: Path
    git: GitInfo | None = None
    within: Path | None = None  # the boundary when it is not root's own (a run's working directory)

    @cached_property
    def boundary(self) -> Path:
        """What every read must stay inside (computed once per tree)."""
        return Path(self.within).resolve() if self.within is not None else boundary_of(self.root)

    def path(self, relpath: str) -> Path:
        """The file on disk, symlinks followed; OutsideProject when it leaves the project's tree."""
        return confine(self.root, relpath, boundary=self.boundary)

    def read_text(self, relpath: str) -> str:
        return self.path(relpath).read_text(encoding="utf-8")

    def is_file(self, relpath: str) -> bool:
        return self.path(relpath).is_file()

    def cache_key(self, relpath: str) -> tuple[str, int, int, int, int]:
        """Path plus inode, size and both timestamps: an editor's same-size save in one mtime tick
        still changes the inode (atomic rename) or the ctime."""
        path = self.path(relpath)
        stat = path.stat()
        return (os.fspath(path), stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)

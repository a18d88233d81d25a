"""Where the desired state is read from: the working tree, or (issue: triggers) a Git commit.

The loader reads ``prefect.yaml`` and the flow files its entrypoints name through one small
protocol, so planning at a Git ref reads everything from that commit without a checkout.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


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
        """The file's text; FileNotFoundError when absent."""
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

    def read_text(self, relpath: str) -> str:
        return (self.root / relpath).read_text(encoding="utf-8")

    def is_file(self, relpath: str) -> bool:
        return (self.root / relpath).is_file()

    def cache_key(self, relpath: str) -> tuple[str, int, int, int, int]:
        """Path plus inode, size and both timestamps: an editor's same-size save in one mtime tick
        still changes the inode (atomic rename) or the ctime."""
        path = self.root / relpath
        stat = path.stat()
        return (os.fspath(path.resolve()), stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)

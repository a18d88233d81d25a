"""The desired state read from a Git commit, without a checkout (GitPython).

``--ref REF`` plans what a commit says, not what the disk holds: ``prefect.yaml`` and every flow file
an entrypoint names are read from that commit's tree. One long-lived ``Repo`` serves every read
(each live Repo keeps two ``git cat-file`` children; a Repo per read is slow and leaks them), and
``close()`` ends it at shutdown. This is the only module that imports GitPython: its exceptions stop
here as :class:`GitSourceError`. ``import git`` (the slowest import we have) happens on first use,
never at import time; the working tree's commit and status, which every plan in Git reads, come
from ``git`` itself.
"""

from __future__ import annotations

import os
import posixpath
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.desired.source import GitInfo, OutsideProject, confine_posix
from reconciler.errors import ReconcileError

if TYPE_CHECKING:
    import git

ZERO_SHA = "0" * 40
_SYMLINK_MODE = 0o120000
_MAX_LINKS = 8
# Untracked files that never make a project dirty: our own state, bytecode.
_NOT_DIRTY = (".reconcile/", "__pycache__/")


class GitSourceError(ReconcileError):
    """Git cannot answer: not a repository, unknown ref, missing objects (shallow clone), git failing."""


class ChangeType(StrEnum):
    """``git diff --raw`` status letters (GitPython's ``change_type``)."""

    ADDED = "A"
    DELETED = "D"
    MODIFIED = "M"
    RENAMED = "R"
    COPIED = "C"
    TYPE_CHANGED = "T"


@dataclass(frozen=True)
class FileChange:
    """One changed file between two commits; a rename has both paths (repository-relative)."""

    change: ChangeType
    old_path: str | None
    new_path: str | None

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p for p in (self.old_path, self.new_path) if p))


@contextmanager
def _git_errors(what: str) -> Iterator[None]:
    """Translate GitPython/gitdb failures (their base classes vary) into one clear error."""
    import git
    import gitdb.exc

    try:
        yield
    except git.exc.GitCommandError as exc:
        raise GitSourceError(f"{what}: {_stderr(exc) or f'git exited with {exc.status}'}") from exc
    except (git.exc.GitError, gitdb.exc.ODBError, ValueError) as exc:  # BadName, BadObject, bad revspec
        raise GitSourceError(f"{what}: {exc}") from exc


def _stderr(exc: Any) -> str:
    """git's own message from a GitCommandError, on one line."""
    return " ".join(str(exc.stderr or "").replace("stderr:", "").split()).strip(" '")


def _import_git() -> Any:
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    try:
        import git
    except ImportError as exc:  # not installed, or no git executable
        raise GitSourceError(f"reading from Git needs GitPython and git: {exc}") from exc
    return git


class GitRepo:
    """One long-lived repository handle: resolve refs, read trees, compare commits. Close it when done."""

    def __init__(self, repo: git.Repo) -> None:
        self._repo = repo
        self.toplevel = Path(repo.working_tree_dir or repo.git_dir).resolve()

    @classmethod
    def open(cls, path: Path) -> GitRepo:
        """The repository containing ``path`` (searching parent directories)."""
        git = _import_git()
        try:
            return cls(git.Repo(path, search_parent_directories=True))
        except (git.exc.InvalidGitRepositoryError, git.exc.NoSuchPathError):
            raise GitSourceError(f"{path} is not inside a Git repository") from None

    def __enter__(self) -> GitRepo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End the persistent ``git cat-file`` children (touching objects afterwards respawns them)."""
        self._repo.close()

    def prefix(self, project_dir: Path) -> str:
        """The project directory relative to the repository root, POSIX style ("" at the root)."""
        try:
            rel = Path(project_dir).resolve().relative_to(self.toplevel)
        except ValueError:
            raise GitSourceError(f"{project_dir} is not inside the repository at {self.toplevel}") from None
        return "" if rel == Path(".") else rel.as_posix()

    def resolve(self, ref: str) -> str:
        """The full commit sha ``ref`` names (branch, tag, sha, ``HEAD~2``...)."""
        git = _import_git()
        try:
            return str(
                self._repo.git.rev_parse("--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
            )
        except git.exc.GitCommandError as exc:
            if _stderr(exc):  # git itself failed (dubious ownership, corrupt repo...): say so
                raise GitSourceError(f"cannot resolve Git ref {ref!r}: {_stderr(exc)}") from exc
            raise GitSourceError(
                f"unknown Git ref {ref!r}: no such branch, tag or commit in {self.toplevel}"
            ) from None

    def has_commit(self, sha: str | None) -> bool:
        """Whether ``sha`` names a commit present in this clone (false for the all-zero sha)."""
        if not sha or sha == ZERO_SHA:
            return False
        try:
            self.resolve(sha)
        except GitSourceError:
            return False
        return True

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        """``git merge-base --is-ancestor``: true also when both are the same commit."""
        with _git_errors(f"cannot compare {ancestor[:12]} with {descendant[:12]}"):
            return bool(self._repo.is_ancestor(ancestor, descendant))

    def merge_base(self, a: str, b: str) -> str | None:
        with _git_errors(f"cannot find the merge base of {a[:12]} and {b[:12]}"):
            bases = self._repo.merge_base(a, b)
        return bases[0].hexsha if bases else None

    def first_parent(self, sha: str) -> str | None:
        with _git_errors(f"cannot read commit {sha[:12]}"):
            parents = self._repo.commit(sha).parents
        return parents[0].hexsha if parents else None

    @property
    def shallow(self) -> bool:
        with _git_errors("cannot inspect the repository"):
            return self._repo.git.rev_parse("--is-shallow-repository").strip() == "true"

    def upstream(self, ref: str) -> tuple[str, str] | None:
        """``(remote, tracking ref)`` that ``ref`` follows: a local branch's upstream, or the remote a
        ``remote/branch`` ref names; None for a ref no remote feeds (``serve --sync-ref``)."""
        with _git_errors(f"cannot read the upstream of {ref!r}"):
            head = next((h for h in self._repo.heads if h.name == ref), None)
            if head is not None:
                tracking = head.tracking_branch()
                return (tracking.remote_name, tracking.path) if tracking is not None else None
            remote = next((r.name for r in self._repo.remotes if ref.startswith(f"{r.name}/")), None)
            return (remote, f"refs/remotes/{ref}") if remote is not None else None

    def fetch(self, remote: str) -> None:
        """``git fetch REMOTE``: bring the remote's branches up to date (``serve --sync-interval``)."""
        with _git_errors(f"cannot fetch from {remote!r}"):
            self._repo.git.fetch("--quiet", "--prune", "--end-of-options", remote)

    def changes(self, base: str | None, head: str) -> list[FileChange]:
        """Files changed from ``base`` to ``head`` (renames detected); no base: every file of ``head``."""
        with _git_errors(f"cannot compare {base[:12] if base else 'the empty tree'} with {head[:12]}"):
            head_commit = self._repo.commit(head)
            if base is None:
                blobs = head_commit.tree.traverse(predicate=lambda item, _depth: item.type == "blob")
                return [FileChange(ChangeType.ADDED, None, str(blob.path)) for blob in blobs]
            return [_file_change(d) for d in self._repo.commit(base).diff(head_commit)]

    def tree(self, project_dir: Path, ref: str, *, label: str | None = None) -> GitTree:
        """The project's files at ``ref``, sharing this handle (closing the tree leaves it open)."""
        sha = self.resolve(ref)
        with _git_errors(f"cannot read commit {sha[:12]}"):
            commit = self._repo.commit(sha)
        label = label or (None if sha.startswith(ref.lower()) else ref)  # a sha names no ref
        info = GitInfo(commit=sha, ref=label, dirty=False)
        return GitTree(
            root=Path(project_dir), git=info, repo=self, commit=commit, prefix=self.prefix(project_dir)
        )


def _file_change(diff: Any) -> FileChange:
    kind = ChangeType((diff.change_type or "M")[:1])
    if kind is ChangeType.ADDED:
        return FileChange(kind, None, diff.b_path)
    if kind is ChangeType.DELETED:
        return FileChange(kind, diff.a_path, None)
    return FileChange(kind, diff.a_path, diff.b_path)


def working_info(project_dir: Path) -> GitInfo | None:
    """HEAD's commit, branch (None when detached) and whether the project's files differ from it;
    None without a commit yet. Two ``git`` commands, no GitPython: its import alone costs more than
    both, and every plan of a project in Git asks this."""
    prefix = _git_output(project_dir, "rev-parse", "--show-prefix").strip().rstrip("/")
    status = _git_output(
        project_dir, "status", "--porcelain=v2", "--branch", "-z", "--untracked-files=all", "--", "."
    )
    commit = branch = None
    dirty = False
    entries = iter(status.split("\0"))
    for entry in entries:
        if entry.startswith("# branch.oid "):
            commit = entry.removeprefix("# branch.oid ")
        elif entry.startswith("# branch.head "):
            branch = entry.removeprefix("# branch.head ")
        elif entry.startswith(("1 ", "u ")):
            dirty = True  # a tracked change, or a conflict
        elif entry.startswith("2 "):
            dirty = True  # a rename or copy: its source path is the next entry
            next(entries, None)
        elif entry.startswith("? "):
            dirty = dirty or not _ours(entry[2:], prefix)
    if commit is None or commit == "(initial)":
        return None  # a repository without commits yet
    return GitInfo(commit=commit, ref=None if branch == "(detached)" else branch, dirty=dirty)


def _ours(path: str, prefix: str) -> bool:
    """An untracked file that never makes a project dirty: our own state, bytecode (paths are
    relative to the repository root, ``prefix`` is the project's place in it)."""
    inside = path[len(prefix) + 1 :] if prefix else path
    return inside.startswith(_NOT_DIRTY) or f"/{_NOT_DIRTY[1]}" in inside or inside.endswith(".pyc")


def _git_output(directory: Path, *args: str) -> str:
    """What ``git ARGS`` prints in ``directory``; GitSourceError with git's own message if it fails."""
    try:
        done = subprocess.run(
            ["git", *args], cwd=directory, capture_output=True, stdin=subprocess.DEVNULL, check=False
        )
    except OSError as exc:  # no git executable, or the directory is gone
        raise GitSourceError(f"cannot run git in {directory}: {exc.strerror or exc}") from None
    if done.returncode != 0:
        said = " ".join(done.stderr.decode("utf-8", "replace").split())
        raise GitSourceError(
            f"cannot read the working tree's Git status: {said or f'git exited with {done.returncode}'}"
        )
    return done.stdout.decode("utf-8", "surrogateescape")


@dataclass(frozen=True)
class GitTree:
    """A :class:`~reconciler.desired.SourceTree` over one commit: files are blobs, no checkout needed.

    ``root`` stays the project directory on disk (for display and for runs); reads are relative to
    it and resolved inside the commit's tree at the project's place in the repository.
    """

    root: Path
    git: GitInfo
    repo: GitRepo = field(repr=False)
    commit: Any = field(repr=False)  # git.Commit
    prefix: str = ""
    owns_repo: bool = False

    @classmethod
    def open(cls, project_dir: Path, ref: str) -> GitTree:
        """A tree with its own repository handle; ``close()`` ends it."""
        repo = GitRepo.open(project_dir)
        try:
            tree = repo.tree(project_dir, ref)
        except BaseException:
            repo.close()
            raise
        return GitTree(tree.root, tree.git, repo, tree.commit, tree.prefix, owns_repo=True)

    def close(self) -> None:
        if self.owns_repo:
            self.repo.close()

    def read_text(self, relpath: str) -> str:
        blob = self._blob(relpath)
        if blob is None:
            raise FileNotFoundError(f"{relpath} (at {self.git.ref or self.git.commit[:12]})")
        return bytes(blob.data_stream.read()).decode("utf-8")

    def is_file(self, relpath: str) -> bool:
        return self._blob(relpath) is not None

    def cache_key(self, relpath: str) -> str:
        blob = self._blob(relpath)
        if blob is None:
            raise FileNotFoundError(relpath)
        return f"git:{blob.hexsha}:{self._path(relpath)}"

    def _path(self, relpath: str) -> str:
        """The repository path of ``relpath``; OutsideProject when it leaves the repository."""
        return confine_posix(self.prefix, relpath)

    def _blob(self, relpath: str) -> Any:
        """The blob at ``relpath`` (following in-repository symlinks), or None."""
        path: str | None = self._path(relpath)
        with _git_errors(f"cannot read {relpath} at {self.git.commit[:12]}"):
            for _ in range(_MAX_LINKS):
                if path is None or path == ".":
                    return None
                try:
                    obj = self.commit.tree / path
                except KeyError:
                    return None
                if obj.type != "blob":
                    return None
                if obj.mode != _SYMLINK_MODE:
                    return obj
                target = bytes(obj.data_stream.read()).decode("utf-8", "replace")
                try:
                    path = confine_posix(posixpath.dirname(path), target)
                except OutsideProject:
                    raise OutsideProject(
                        f"{relpath} is a symbolic link that leads outside the project's Git work tree"
                    ) from None
        return None


def detect(project_dir: Path) -> GitInfo | None:
    """The working tree's commit, branch and dirty flag, or None outside a Git repository.

    Walks up for ``.git`` first, so a project outside Git never runs git. Any Git failure also gives
    None: knowing the commit is a bonus for history, never a reason to fail a command.
    """
    if not _inside_git(Path(project_dir)):
        return None
    try:
        return working_info(project_dir)
    except GitSourceError:
        return None


def _inside_git(path: Path) -> bool:
    resolved = path.resolve()
    return any((directory / ".git").exists() for directory in (resolved, *resolved.parents))

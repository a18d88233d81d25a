"""Git pushes as triggers: which files a push changed, which ``run_on: push`` rules fire, and rollbacks.

Decisions here are pure functions over paths and rules (``push_decisions``, ``glob``); the few that
need history (``changed_paths``, ``push_base``, ``relation``) ask a :class:`desired_state.GitRepo`, the one
place GitPython is used.

Patterns follow GitHub's ``paths``/``branches`` filters, so a rule reads like the workflow next to it:
``*`` stays inside a directory, ``**`` crosses directories (``**/`` is zero or more directories, a
trailing ``/**`` is everything below), ``?`` and ``+`` make the preceding character optional or
repeated, ``[a-z]`` is a character class, and a leading ``!`` excludes what earlier patterns matched
(the last matching pattern wins). Paths are relative to the project directory (``../x`` outside it).
"""

from __future__ import annotations

import functools
import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from reconciler import desired as desired_state
from reconciler.errors import ReconcileError
from reconciler.objects import Address

# -- patterns ----------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def compile_glob(pattern: str) -> re.Pattern[str]:
    """One GitHub filter pattern (without its ``!``) as a regular expression over the whole path."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        if pattern.startswith("**", i):
            at_start = i == 0 or pattern[i - 1] == "/"
            i += 2
            if at_start and pattern.startswith("/", i):  # "**/": zero or more whole directories
                out.append("(?:.*/)?")
                i += 1
            else:
                out.append(".*")
            continue
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c in "?+":
            out.append(c if out and not out[-1].endswith((")?", "*", "?", "+")) else re.escape(c))
        elif c == "[" and (end := pattern.find("]", i + 1)) > i + 1:
            out.append("[" + pattern[i + 1 : end].replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def glob(pattern: str, path: str) -> bool:
    """Whether ``path`` matches one (positive) pattern."""
    return compile_glob(pattern).fullmatch(path) is not None


def selected_by(patterns: Sequence[str], path: str) -> str | None:
    """The positive pattern that selects ``path`` (the last matching pattern wins), or None."""
    chosen: str | None = None
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        if glob(pattern, path):
            chosen = None if negate else raw
    return chosen


def branch_matches(patterns: Sequence[str], branch: str | None) -> str | None:
    """The pattern a branch name matches (``refs/heads/`` dropped), or None; no patterns: any branch."""
    if not patterns:
        return "*"
    if not branch:
        return None
    return selected_by(patterns, branch.removeprefix("refs/heads/"))


@dataclass(frozen=True)
class PathMatch:
    pattern: str
    path: str


def first_path_match(patterns: Sequence[str], paths: Iterable[str]) -> PathMatch | None:
    """The first changed path (in order) that the patterns select, with the pattern that did it."""
    for path in paths:
        pattern = selected_by(patterns, path)
        if pattern is not None:
            return PathMatch(pattern, path)
    return None


# -- changed paths -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChangedPaths:
    """The files a push changed, relative to the project directory, and which range was compared."""

    base: str | None  # None: the head is a root commit, every file counts as added
    head: str
    paths: tuple[str, ...]
    why: str = ""  # how the base was chosen, for people


def changed_paths(
    repo: desired_state.GitRepo, *, base: str | None, head: str, prefix: str, why: str = ""
) -> ChangedPaths:
    """Files changed from ``base`` to ``head`` (both paths of a rename), relative to ``prefix``."""
    seen: dict[str, None] = {}
    for change in repo.changes(base, head):
        for path in change.paths:
            seen[project_relative(path, prefix)] = None
    return ChangedPaths(base, head, tuple(seen), why)


def project_relative(repo_path: str, prefix: str) -> str:
    """A repository path as the project sees it (``flows/x.py``, or ``../shared/y.py`` outside it)."""
    return posixpath.relpath(repo_path, prefix) if prefix else repo_path


def push_base(
    repo: desired_state.GitRepo, *, before: str | None, after: str, last_applied: str | None
) -> tuple[str | None, str]:
    """The commit to compare ``after`` with, and why.

    Normally the push's ``before`` (what GitHub's own ``paths`` filter compares). When earlier pushes
    were never applied (the last applied commit is an older ancestor of ``before``), their changes
    count too, so a failed job does not lose its runs. A new branch (``before`` all zeros) or an
    unknown ``before`` falls back to the last applied commit, then to ``after``'s parent; a missing
    object in a shallow clone is an error rather than a guess that would launch everything.
    """
    known_last = (
        last_applied if last_applied and last_applied != after and repo.has_commit(last_applied) else None
    )
    if before and before != desired_state.ZERO_SHA and repo.has_commit(before):
        if known_last and known_last != before and repo.is_ancestor(known_last, before):
            return (
                known_last,
                f"since the last applied commit {known_last[:12]}; later pushes were never applied",
            )
        return before, f"{before[:12]}..{after[:12]}"
    if before and before != desired_state.ZERO_SHA and repo.shallow:
        raise desired_state.GitSourceError(
            f"commit {before[:12]} (the push's before) is not in this shallow clone: "
            "fetch the history (actions/checkout with fetch-depth: 0)"
        )
    if known_last and repo.is_ancestor(known_last, after):
        return known_last, f"since the last applied commit {known_last[:12]}"
    parent = repo.first_parent(after)
    if parent is not None:
        return parent, f"the parent of {after[:12]} (no earlier commit to compare with)"
    if repo.shallow:
        raise desired_state.GitSourceError(
            f"cannot tell what {after[:12]} changed in a shallow clone: fetch the history (fetch-depth: 0)"
        )
    return None, f"{after[:12]} is a root commit: every file is new"


# -- rules -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleDecision:
    """Whether one deployment's ``run_on: push`` rule fires for a push, and why (for people)."""

    deployment: str  # "flow/name"
    rule: desired_state.RunRule
    fired: bool
    why: str

    @property
    def reason(self) -> str:
        """The run's ``reason`` when it fired: ``push: flows/etl/** matched flows/etl/x.py``."""
        return f"push: {self.why}"


def push_decisions(
    run_rules: Mapping[Address, Sequence[desired_state.RunRule]], *, branch: str | None, paths: Sequence[str]
) -> list[RuleDecision]:
    """Every push rule's verdict for a push of ``paths`` to ``branch``, in deployment order."""
    decisions: list[RuleDecision] = []
    for address in sorted(run_rules, key=str):
        for rule in run_rules[address]:
            if rule.kind is desired_state.RuleKind.PUSH:
                decisions.append(_decide(address.name, rule, branch, paths))
    return decisions


def _decide(
    deployment: str, rule: desired_state.RunRule, branch: str | None, paths: Sequence[str]
) -> RuleDecision:
    branch_pattern = branch_matches(rule.branches, branch)
    if branch_pattern is None:
        where = f"branch {branch}" if branch else "an unknown branch"
        return RuleDecision(deployment, rule, False, f"{where} is not in branches {list(rule.branches)}")
    on_branch = f" on {branch}" if rule.branches and branch else ""
    if not rule.paths:
        return RuleDecision(deployment, rule, True, f"branch {branch_pattern} matched {branch}")
    match = first_path_match(rule.paths, paths)
    if match is None:
        return RuleDecision(deployment, rule, False, f"no changed path matches {list(rule.paths)}{on_branch}")
    return RuleDecision(deployment, rule, True, f"{match.pattern} matched {match.path}{on_branch}")


def fired(decisions: Iterable[RuleDecision]) -> dict[str, str]:
    """``deployment -> reason`` of the first rule that fired for each deployment (one run each)."""
    chosen: dict[str, str] = {}
    for decision in decisions:
        if decision.fired and decision.deployment not in chosen:
            chosen[decision.deployment] = decision.reason
    return chosen


# -- rollbacks ---------------------------------------------------------------------------------------


class Relation(StrEnum):
    """Where a commit stands relative to the last applied one."""

    FIRST = "first"  # nothing applied from Git yet
    SAME = "same"
    AHEAD = "ahead"  # the last applied commit is an ancestor: a normal step forward
    BEHIND = "behind"  # an ancestor of the last applied commit: applying rolls back
    DIVERGED = "diverged"  # neither: another branch
    UNKNOWN = "unknown"  # the last applied commit is not in this clone

    @property
    def rollback(self) -> bool:
        return self is Relation.BEHIND


def relation(repo: desired_state.GitRepo, commit: str, last_applied: str | None) -> Relation:
    if not last_applied:
        return Relation.FIRST
    if commit == last_applied:
        return Relation.SAME
    if not repo.has_commit(last_applied):
        return Relation.UNKNOWN
    if repo.is_ancestor(commit, last_applied):
        return Relation.BEHIND
    if repo.is_ancestor(last_applied, commit):
        return Relation.AHEAD
    return Relation.DIVERGED


class RollbackRefused(ReconcileError):
    """Applying would put an older commit over a newer one."""


def relation_at(project_dir: Path, commit: str, last_applied: str | None) -> Relation:
    """:func:`relation` with a short-lived repository handle (a command that asks once)."""
    if not last_applied or commit == last_applied:
        return Relation.FIRST if not last_applied else Relation.SAME
    try:
        with desired_state.GitRepo.open(project_dir) as repo:
            return relation(repo, commit, last_applied)
    except desired_state.GitSourceError:  # e.g. a saved plan applied outside the clone it was made in
        return Relation.UNKNOWN


# What `apply` and `trigger push` can do about a refused rollback; a command without that option
# passes its own remedy (``ReconcileOptions.rollback_remedy``).
ROLLBACK_REMEDY = "pass --allow-rollback if that is what you mean"


def refuse_rollback(
    found: Relation, commit: str, last_applied: str | None, *, allow: bool, remedy: str = ROLLBACK_REMEDY
) -> None:
    """Refuse to apply an ancestor of the last applied commit unless ``allow``; the message ends with
    ``remedy``: what the operator of the command that refuses can do."""
    if found.rollback and not allow:
        raise RollbackRefused(
            f"refusing to apply commit {commit[:12]}: it is older than the last applied commit "
            f"{(last_applied or '')[:12]} (an ancestor of it), so applying would roll back; {remedy}"
        )


def source_notes(
    git: desired_state.GitInfo | None, last_applied: str | None, found: Relation | None
) -> list[str]:
    """Notices for a plan: dirty working tree, behind / diverged from what was last applied."""
    notes: list[str] = []
    if git is None:
        return notes
    if git.dirty:
        notes.append(
            f"note: the working tree has uncommitted changes: this plan is of the files on disk, "
            f"not of commit {git.commit[:12]}"
        )
    last = (last_applied or "")[:12]
    if found is Relation.BEHIND:
        notes.append(
            f"note: commit {git.commit[:12]} is behind the last applied commit {last}: "
            "applying it would roll back (apply refuses without --allow-rollback)"
        )
    elif found is Relation.DIVERGED:
        notes.append(f"note: commit {git.commit[:12]} is not a descendant of the last applied commit {last}")
    elif found is Relation.UNKNOWN:
        notes.append(
            f"note: the last applied commit {last} is not in this clone; cannot tell if this rolls back"
        )
    return notes

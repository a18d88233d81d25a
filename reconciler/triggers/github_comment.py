"""The sticky plan comment: one per working directory, found by its marker AND by its author.

Anyone who can comment on a pull request can post a comment that starts with the marker. The marker
alone therefore proves nothing: the comment the Action edits must also be authored by the account
the token acts as (:meth:`GitHubClient.authenticated_login`: ``github-actions[bot]`` for the
workflow's ``GITHUB_TOKEN``, the token's user for a personal token). A foreign comment carrying the
marker is ignored and left as it is; the Action posts (and from then on edits) its own. Quoting the
marker does not count either: the body must start with it.

The marker can only come from here: the renderer escapes every user string so that none can
contain ``<!--`` (see ``plan/escape.py``).
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any

from reconciler.plan.escape import visible
from reconciler.triggers.github_api import GitHubClient

MARKER = "<!-- prefect-reconciler plan: {} -->"


def marker(working_directory: str) -> str:
    """The hidden first line that finds this directory's sticky comment again.

    The directory is the Action's input, shown on one line with no ``--`` (which would end the
    HTML comment early).
    """
    name = visible(posixpath.normpath(working_directory or "."))
    return MARKER.format(name.replace("--", "-\u2010").replace(">", "\u203a"))


def upsert_comment(
    client: GitHubClient,
    repository: str,
    number: int,
    mark: str,
    body: str,
    *,
    author: str | None = None,
) -> tuple[int, bool]:
    """Edit our comment that starts with ``mark``, else create one: ``(comment id, created)``.

    ``author`` is the login the token acts as (asked from GitHub when not given). Only a comment
    by that login is ever edited; an unchanged body is not written again.
    """
    login = (author or client.authenticated_login()).casefold()
    for comment in client.issue_comments(repository, number):
        if _is_ours(comment, mark, login):
            if comment.get("body") != body:
                client.update_issue_comment(repository, int(comment["id"]), body)
            return int(comment["id"]), False
    return int(client.create_issue_comment(repository, number, body)["id"]), True


def _is_ours(comment: Mapping[str, Any], mark: str, login: str) -> bool:
    user = comment.get("user") or {}
    author = str(user.get("login") or "") if isinstance(user, Mapping) else ""
    return author.casefold() == login and str(comment.get("body") or "").startswith(mark)

"""The sticky comment through the Action's entry: only a comment the token's account wrote is ever
edited; a planted comment carrying the marker is ignored and left as it was; a pull request's own
strings cannot forge a marker or break out of the comment's structure.
"""

from __future__ import annotations

import re

from reconciler.triggers.github_comment import marker
from tests.fakes.github import FakeGitHub
from tests.triggers import conftest as trigger_fixtures
from tests.triggers import test_github_action as action_fixtures
from tests.triggers.test_github_action import ETL, Runner, _yaml, pull_request_payload

# the Action's end-to-end fixtures (a Git repository, the fake GitHub, an applied project)
repo = trigger_fixtures.repo
fake_github = trigger_fixtures.fake_github
runner = action_fixtures.runner

FAKE_PLAN = "\n### Reconcile plan for `acme`: no changes\n\nNothing to review, merge away."


def test_a_planted_marker_comment_is_ignored_and_left_untouched(runner: Runner) -> None:
    repo, fake = runner.repo, runner.fake
    mark = marker("deploy")
    planted = fake.add_comment(42, mark + FAKE_PLAN, user="mallory")
    base = repo.head()
    repo.checkout("-b", "feature")
    head = repo.commit("tune etl", {"deploy/prefect.yaml": _yaml(rows=5)})

    _, _, console = runner.run(
        "pull_request", pull_request_payload("opened", 42, base_sha=base, head_sha=head)
    )
    assert "could not post" not in console and "Created plan comment" in console
    ours = [c for c in fake.comments_on(42) if c.user == "github-actions[bot]"]
    assert len(ours) == 1 and ours[0].body.startswith(mark) and "1 object to change" in ours[0].body
    assert fake.comments[planted.id].body == mark + FAKE_PLAN  # untouched
    assert [r.method for r in fake.writes()] == ["POST"]  # never a PATCH of mallory's comment

    # the next push edits our comment, still never the planted one
    head2 = repo.commit("more rows", {"deploy/prefect.yaml": _yaml(rows=6)})
    _, _, console = runner.run(
        "pull_request", pull_request_payload("synchronize", 42, base_sha=base, head_sha=head2)
    )
    assert f"Updated plan comment {ours[0].id}" in console
    patches = [r.path for r in fake.writes() if r.method == "PATCH"]
    assert patches == [f"/repos/acme/flows/issues/comments/{ours[0].id}"]
    assert fake.comments[planted.id].body == mark + FAKE_PLAN


def test_a_personal_token_edits_only_its_own_comment(runner: Runner, fake_github: FakeGitHub) -> None:
    repo = runner.repo
    fake_github.users["ghp_reviewer_bot"] = "acme-bot"
    mark = marker("deploy")
    fake_github.add_comment(8, mark + "\nold plan", user="github-actions[bot]")  # not this token's
    base = repo.head()
    repo.checkout("-b", "feature")
    head = repo.commit("tune etl", {"deploy/prefect.yaml": _yaml(rows=5)})
    runner.run(
        "pull_request",
        pull_request_payload("opened", 8, base_sha=base, head_sha=head),
        GITHUB_TOKEN="ghp_reviewer_bot",
    )
    mine = [c for c in fake_github.comments_on(8) if c.user == "acme-bot"]
    assert len(mine) == 1 and mine[0].body.startswith(mark)
    assert [r.method for r in fake_github.writes()] == ["POST"]


def test_pull_request_strings_cannot_forge_the_marker_or_the_structure(runner: Runner) -> None:
    repo, fake = runner.repo, runner.fake
    base = repo.head()
    repo.checkout("-b", "feature")
    hostile = _yaml(rows=5).replace(
        "    parameters: {rows: 5}",
        "    parameters: {rows: 5}\n"
        '    description: "</details>\\n\\n' + marker("deploy") + ' @acme/admins #1\\n```\\n"\n'
        '    tags: ["</code></summary></details>", "@octocat"]',
    )
    head = repo.commit("hostile", {"deploy/prefect.yaml": hostile, "deploy/flows/etl/etl.py": ETL + "#\n"})
    runner.run("pull_request", pull_request_payload("opened", 5, base_sha=base, head_sha=head))
    (comment,) = fake.comments_on(5)
    body = comment.body
    assert body.startswith(marker("deploy")) and body.count("<!--") == 1
    assert body.count("<details") == body.count("</details>")
    assert not re.search(r"@[A-Za-z0-9]|(?<!&)#(?!quot;)[0-9]", body.split("```mermaid")[0])
    assert runner.leaks() == []

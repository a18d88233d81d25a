"""The GitHub REST client against the local fake: pagination, rate limits, errors without the token."""

from __future__ import annotations

import logging

import pytest

from reconciler.triggers import github_comment as github
from reconciler.triggers.github_api import GitHubClient, GitHubError
from tests.fakes.github import FakeGitHub

REPO = "acme/flows"


def _client(fake: FakeGitHub, **options: float) -> GitHubClient:
    return GitHubClient(token=fake.token, api_url=fake.url, **options)  # type: ignore[arg-type]


def test_comment_lists_follow_link_headers_across_pages(fake_github: FakeGitHub) -> None:
    fake_github.max_per_page = 3
    for i in range(8):
        fake_github.add_comment(7, f"comment {i}")
    with _client(fake_github) as client:
        bodies = [c["body"] for c in client.issue_comments(REPO, 7)]
    assert bodies == [f"comment {i}" for i in range(8)]
    pages = [r for r in fake_github.requests if r.method == "GET"]
    assert len(pages) == 3  # 3 + 3 + 2, each next page taken from the Link header
    assert pages[0].query["per_page"] == ["100"] and pages[1].query["page"] == ["2"]
    assert all(r.headers["Authorization"] == f"Bearer {fake_github.token}" for r in pages)
    assert all(r.headers["X-GitHub-Api-Version"] == "2022-11-28" for r in pages)


def test_upsert_edits_the_marked_comment_and_ignores_quotes_of_it(fake_github: FakeGitHub) -> None:
    fake_github.max_per_page = 2
    mark = github.marker("projects/etl")
    fake_github.add_comment(3, f"> {mark}\n> quoting the bot", "github-actions[bot]")  # not at the start
    fake_github.add_comment(3, github.marker(".") + "\nanother directory's plan", "github-actions[bot]")
    fake_github.add_comment(3, "lgtm")
    with _client(fake_github) as client:
        first, created = github.upsert_comment(client, REPO, 3, mark, f"{mark}\nplan v1")
        assert created
        again, created = github.upsert_comment(client, REPO, 3, mark, f"{mark}\nplan v2")
        assert again == first and not created
        github.upsert_comment(client, REPO, 3, mark, f"{mark}\nplan v2")  # unchanged: no write
    bodies = [c.body for c in fake_github.comments_on(3)]
    assert bodies[-1] == f"{mark}\nplan v2" and len(bodies) == 4
    assert [w.method for w in fake_github.writes()] == ["POST", "PATCH"]
    assert [r.path for r in fake_github.requests].count("/user") == 1  # asked once per client


def test_the_token_account_is_the_one_github_documents(fake_github: FakeGitHub) -> None:
    fake_github.users["ghp_personal"] = "octo-bot"
    with _client(fake_github) as client:  # GITHUB_TOKEN: GET /user refuses it, the bot writes
        assert client.authenticated_login() == "github-actions[bot]"
    declared = GitHubClient(token=fake_github.token, api_url=fake_github.url, actions_token=True)
    with declared:
        assert declared.authenticated_login() == "github-actions[bot]"
    with GitHubClient(token="ghp_personal", api_url=fake_github.url) as client:
        assert client.authenticated_login() == "octo-bot"
    # an installation token declared not to be GITHUB_TOKEN (another app): its account is unknown
    other_app = GitHubClient(token=fake_github.token, api_url=fake_github.url, actions_token=False)
    with other_app, pytest.raises(GitHubError, match="cannot tell which account the github-token acts as"):
        other_app.authenticated_login()
    assert [r.path for r in fake_github.requests].count("/user") == 3


def test_secondary_rate_limits_are_waited_out(fake_github: FakeGitHub) -> None:
    fake_github.rate_limit_next = 2
    fake_github.rate_limit_retry_after = "0"
    with _client(fake_github) as client:
        created = client.create_issue_comment(REPO, 1, "hello")
    assert created["body"] == "hello"
    assert [r.method for r in fake_github.requests] == ["POST", "POST", "POST"]
    assert len(fake_github.comments_on(1)) == 1


def test_a_wait_longer_than_allowed_and_other_errors_fail_clearly(
    fake_github: FakeGitHub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake_github.rate_limit_next = 1
    fake_github.rate_limit_retry_after = "3600"
    with _client(fake_github) as client:
        with pytest.raises(
            GitHubError, match="HTTP 403: You have exceeded a secondary rate limit"
        ) as limited:
            client.create_issue_comment(REPO, 1, "hello")
        with pytest.raises(GitHubError, match=r"HTTP 422: Validation Failed \(body is too long") as too_long:
            client.create_issue_comment(REPO, 1, "x" * 70_000)
        with pytest.raises(GitHubError, match="HTTP 404") as missing:
            client.update_issue_comment(REPO, 424242, "x")
        text = " ".join(str(e.value) for e in (limited, too_long, missing)) + repr(client) + caplog.text
    with GitHubClient(token="wrong", api_url=fake_github.url) as client:
        with pytest.raises(GitHubError, match="HTTP 401: Bad credentials") as denied:
            client.create_issue_comment(REPO, 1, "x")
        text += str(denied.value) + repr(client)
    unreachable = GitHubClient(token=fake_github.token, api_url="http://127.0.0.1:9", max_attempts=1)
    with unreachable, pytest.raises(GitHubError, match="cannot reach"):
        unreachable.create_issue_comment(REPO, 1, "x")
    assert fake_github.token not in text and "wrong" not in text

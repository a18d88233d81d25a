"""Credentials in a state URL never reach an output: errors, plan text/JSON/Markdown, plan files.

The state URL is operator configuration (a secret in CI) and the plan is posted where every reader
of a pull request sees it. Every URL the tool shows goes through ``infra.redact.redact_url``.
"""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.infra import retry
from reconciler.infra.redact import MASK, is_credential_name, redact_url, redact_urls
from tests.triggers.conftest import invoke

CANARY = "Zq9-CANARY-c3d1"
PROJECT = "name: demo\nwork_pools:\n  - name: local\n    type: process\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "prefect.yaml").write_text(PROJECT, encoding="utf-8")
    return root


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+psycopg://u@127.0.0.1:1/db?password={CANARY}",
        f"postgresql+psycopg://u:{CANARY}@127.0.0.1:1/db",
        f"postgresql+psycopg://u:a/{CANARY}@127.0.0.1:1/db",  # SQLAlchemy reads a password with "/"
        f"postgresql+psycopg://u@127.0.0.1:1/db?sslmode=disable&sslpassword={CANARY}",
        f"prefect+http://127.0.0.1:1/api?key={CANARY}",
        f"prefect+http://127.0.0.1:1/api?API_TOKEN={CANARY}",
        f"prefect+http://user:{CANARY}@127.0.0.1:1/api",
        f"nosuch://u:{CANARY}@host/db?token={CANARY}",
    ],
)
def test_an_unreachable_store_fails_without_printing_its_credentials(
    project: Path, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every attempt and every retry message still happens; only the backoff's waits are skipped
    # (~2.5 s per command against a port that refuses at once).
    monkeypatch.setitem(retry.call_with_retries.__kwdefaults__, "sleep", lambda seconds: None)
    for args in (("plan",), ("plan", "--json"), ("state", "list")):
        code, out, err = invoke(project, "--state", url, *args)
        assert code == 1, out + err
        assert err.startswith("error: ") and "Traceback" not in err
        assert CANARY not in out + err


@pytest.mark.parametrize(
    "url",
    [f"memory://?token={CANARY}", "sqlite:///{db}?uri=true&sig=" + CANARY],
)
def test_plans_show_the_state_url_redacted_in_every_form(project: Path, tmp_path: Path, url: str) -> None:
    url = url.format(db=tmp_path / "state.db")
    seen: list[str] = []
    for args in (("plan",), ("plan", "--json"), ("plan", "--markdown"), ("state", "list", "--json")):
        code, out, err = invoke(project, "--state", url, *args)
        assert code == 0, out + err
        seen.append(out + err)
    plan_file = tmp_path / "saved.plan"
    code, out, err = invoke(project, "--state", url, "plan", "--out", str(plan_file))
    assert code == 0, out + err
    seen.extend([out + err, plan_file.read_text(encoding="utf-8")])
    assert not [text for text in seen if CANARY in text]
    assert f"={MASK}" in seen[0] and f"={MASK}" in seen[1]  # shown, masked, not dropped


def test_redact_url_masks_passwords_and_credential_parameters() -> None:
    cases = {
        "postgresql://u:p@h/db": "postgresql://u:***@h/db",
        "postgresql://u:p@ss@h/db?x=1": "postgresql://u:***@h/db?x=1",
        "postgresql://u:pa?ss@h/db": "postgresql://u:***@h/db",
        "postgresql://u@h/db?PassWord=p&application_name=a": "postgresql://u@h/db?PassWord=***&application_name=a",
        "https://h/api?X-Amz-Signature=s&X-Amz-Credential=c&x=1": (
            "https://h/api?X-Amz-Signature=***&X-Amz-Credential=***&x=1"
        ),
        "https://acct.blob.core.windows.net/c?sv=2022&sig=s%2B": "https://acct.blob.core.windows.net/c?sv=2022&sig=***",
        "https://h/cb#access_token=t&state=1": "https://h/cb#access_token=***&state=1",
        "https://h/api?pass%77ord=p": "https://h/api?pass%77ord=***",
        "https://h:4200/api?u=a@b": "https://h:4200/api?u=a@b",
        "sqlite:////tmp/state.db": "sqlite:////tmp/state.db",
        "not a url": "not a url",
    }
    for url, shown in cases.items():
        assert redact_url(url) == shown, url
        assert redact_url(shown) == shown  # idempotent
    assert redact_urls("cannot open 'postgresql://u:p@h/db?token=t' now") == (
        "cannot open 'postgresql://u:***@h/db?token=***' now"
    )


_WORDS = st.sampled_from(
    ["password", "passwd", "pwd", "key", "apikey", "api_key", "token", "secret", "sig", "signature"]
)
_VENDOR_WORDS = st.sampled_from(["auth", "credential", "sas", "sslpassword", "X-Amz-Security-Token"])
_VALUE = st.text(string.ascii_letters + string.digits + "-_.~%+/:@", min_size=6, max_size=30)
_CASE = st.sampled_from([str.lower, str.upper, str.title])


@settings(max_examples=300, deadline=None)
@given(
    scheme=st.sampled_from(["postgresql+psycopg", "postgres", "sqlite", "prefect+https", "https", "memory"]),
    word=_WORDS | _VENDOR_WORDS,
    case=_CASE,
    value=_VALUE,
    password=_VALUE,
    in_userinfo=st.booleans(),
    other=st.sampled_from(["", "sslmode=require&", "application_name=x&"]),
)
def test_no_credential_survives_redaction(
    scheme: str, word: str, case: object, value: str, password: str, in_userinfo: bool, other: str
) -> None:
    value, password = f"V{value}V", f"P{password}P"  # distinctive ends: never part of the shown URL
    name = case(word)  # type: ignore[operator]
    assert is_credential_name(name)
    userinfo = f"user:{password}@" if in_userinfo else "user@"
    url = f"{scheme}://{userinfo}db.example:5432/name?{other}{name}={value}"
    shown = redact_url(url)
    assert value not in shown and (not in_userinfo or password not in shown), shown
    assert shown.startswith(f"{scheme}://user") and "db.example:5432/name" in shown
    assert redact_urls(f"error: x {url} y") == f"error: x {shown} y"

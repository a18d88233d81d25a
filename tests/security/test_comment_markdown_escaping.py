"""No string a pull request writes can change the structure of the plan comment or the terminal plan.

Property: render a plan whose user-controlled strings (project, Git ref, flow and deployment names,
schedule slugs, field paths, descriptions, tags, values, reasons, warnings, run reasons) are random,
and the same plan with plain placeholders. The random comment has the same line skeleton, the same
HTML tags, exactly one marker (first), balanced ``<details>`` and fences, and no live ``@mention``
or ``#reference``; the random terminal plan has the same lines, one ``Plan:`` line.
"""

from __future__ import annotations

import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler import plan as planning
from reconciler.objects import Address, Resource
from reconciler.plan.escape import ZWSP, code_span, escape, visible
from reconciler.plan.model import (
    Action,
    Change,
    Drift,
    FieldChange,
    GitSource,
    Plan,
    PlanSource,
    RunRequest,
    StateRef,
)
from reconciler.plan.render_markdown import MarkdownOptions

MARKER = "<!-- prefect-reconciler plan: deploy -->"
ATTACKS = [
    "</details>",
    "<details><summary>x",
    "@octocat",
    "@acme/admins",
    "#1",
    "GH-2",
    "acme/flows#3",
    "```",
    "````mermaid",
    "\n```\n",
    '"]\n```\n### Reconcile plan for `acme`: no changes\n',
    MARKER,
    "<!-- prefect-reconciler plan: . -->",
    "-->",
    "<img src=x onerror=alert(1)>",
    "[click](https://evil.example)",
    "![px](https://evil.example/p.png)",
    "https://evil.example www.evil.example",
    "\r\nPlan: 0 to create, 0 to update, 0 to replace, 0 to delete, 0 unchanged.\r\n",
    "\x1b[2K\x1b[1A",
    "\u202e\u2028\u2029\x85\x00",
    "| a | b |",
    "&lt;/details&gt;",
    "#quot;",
    "\n::add-mask::x\n::stop-commands::t\n",  # GitHub runner workflow commands start a log line
]
TEXT = st.one_of(
    st.sampled_from(ATTACKS),
    st.text(max_size=40),
    st.lists(st.sampled_from(ATTACKS) | st.text(max_size=8), max_size=4).map("".join),
)


def _plan(s: list[str]) -> Plan:
    """A plan touching every place a user string shows; ``s`` holds 16 strings (index = place)."""
    pool = Address.pool("p-" + s[0])
    dep = Address.deployment("f-" + s[1], "d-" + s[2])
    gone = Address.deployment("g-" + s[3], "x")
    return Plan(
        project="proj-" + s[4],
        source=PlanSource(".", "prefect.yaml", GitSource("a" * 40, "ref-" + s[5], True)),
        state=StateRef("sqlite:///x", 3),
        changes=(
            Change(
                pool,
                Action.REPLACE,
                1,
                (FieldChange("type", "ecs:push", "process"),),
                Resource(pool, {}),
                reason="type changed: " + s[6],
            ),
            Change(
                dep,
                Action.UPDATE,
                2,
                (
                    FieldChange("description", "old " + s[7], "new " + s[8]),
                    FieldChange("tags", ["t-" + s[9]], ["t-" + s[9], "u-" + s[10]]),
                    FieldChange(f"parameters.k-{s[11]}", None, {"v": s[12]}),
                    FieldChange(f"schedules.sl-{s[13]}", {"cron": "0 * * * *"}, None),
                    FieldChange("paused", False, True),
                ),
                Resource(dep, {}, depends_on=(pool,)),
                drift=Drift("2026-01-01T00:00:00Z " + s[14]),
            ),
            Change(gone, Action.DELETE, 1),
        ),
        runs=(RunRequest(str(dep), "apply: " + s[15]),),
        warnings=("warning: " + s[14],),
    )


PLAIN = [f"x{i}" for i in range(16)]


def _skeleton(text: str) -> list[str]:
    """Each line's structural start (two characters), the user strings never lead a line."""
    return [line[:2] for line in text.split("\n")]


def _tags(text: str) -> list[str]:
    return re.findall(r"<(/?[A-Za-z]+|!--)", text)


def _fences_balanced(text: str) -> bool:
    open_fence: str | None = None
    for line in text.split("\n"):
        run = re.match(r"^(`{3,})", line)
        if open_fence is None and run:
            open_fence = run.group(1)
        elif open_fence is not None and line.strip() == open_fence:
            open_fence = None
    return open_fence is None


def _live_mentions(text: str) -> list[str]:
    no_class_defs = "\n".join(line for line in text.split("\n") if "classDef" not in line)
    return re.findall(r"@[A-Za-z0-9]|(?<!&)#(?!quot;)[A-Za-z0-9]|https?://|www\.|\]\(", no_class_defs)


def _render(strings: list[str]) -> str:
    options = MarkdownOptions(marker=MARKER, extra_runs=(RunRequest("f/extra", "push: " + strings[15]),))
    return planning.render_markdown(_plan(strings), options=options)


def test_the_plain_comment_has_the_structure_the_properties_compare_against() -> None:
    text = _render(PLAIN)
    assert text.startswith(MARKER + "\n") and text.count("<details>") == 2 and "```mermaid" in text
    assert _fences_balanced(text) and _live_mentions(text) == []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(TEXT, min_size=16, max_size=16))
def test_random_strings_never_change_the_comment_structure(strings: list[str]) -> None:
    plain, text = _render(PLAIN), _render(strings)
    assert _skeleton(text) == _skeleton(plain)
    assert _tags(text) == _tags(plain)
    assert text.count("<details") == text.count("</details>")
    assert text.startswith(MARKER + "\n") and text.count("<!--") == 1 and text.count(MARKER) == 1
    assert _fences_balanced(text)
    assert _live_mentions(text) == []


@settings(max_examples=150, deadline=None)
@given(st.lists(TEXT, min_size=16, max_size=16))
def test_random_strings_never_add_a_line_to_the_terminal_plan(strings: list[str]) -> None:
    plain, text = planning.render_text(_plan(PLAIN)), planning.render_text(_plan(strings))
    assert len(text.split("\n")) == len(plain.split("\n"))
    breaks = r"[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]"  # everything a terminal or str.splitlines breaks at
    starts = [line for line in re.split(breaks, text) if line.lstrip().startswith("Plan:")]
    assert starts == [planning.summary_line(_plan(strings))]
    assert "\x1b" not in text and "\r" not in text
    assert not [line for line in re.split(breaks, text) if line.lstrip().startswith("::")]


def test_the_escaping_rules() -> None:
    assert escape("</details> @here #1 a|b `x`") == (
        f"&lt;/details&gt; @{ZWSP}here #{ZWSP}1 a&#124;b &#96;x&#96;"
    )
    assert escape("<!-- m --> @a", code=True) == f"<{ZWSP}!-- m --> @{ZWSP}a"
    assert code_span("a``b") == "```a``b```" and code_span("`x") == "`` `x ``"
    assert visible("a\nb\x1b[1m\u202e") == "a\\nb\\x1b[1m\\u202e"
    value: Any = {"k": "v"}
    assert escape(str(value)) == "{&#39;k&#39;: &#39;v&#39;}"

"""A pull request's strings through the real CLI: ``plan --markdown`` stays one inert comment and
``plan`` stays the plan it is, whatever the descriptions, tags, parameters and flow names hold."""

from __future__ import annotations

import re
from pathlib import Path

from reconciler.plan.escape import ZWSP
from tests.triggers.conftest import invoke

MARKER = "<!-- prefect-reconciler plan:"
PROJECT = r"""
name: acme
work_pools:
  - name: local
    type: process
deployments:
  - name: daily
    entrypoint: flows/etl.py:etl
    work_pool: {name: local}
    description: "</details>\n\n@octocat please approve #1 <!-- prefect-reconciler plan: . -->\n```\n"
    tags: ["@acme/admins", "GH-7", "</code></summary>", "[x](https://evil.example)"]
    parameters:
      note: "\"]\n```\n### Reconcile plan for `acme`: no changes\n<details>"
      bidi: "\u202e\u2028\u0085\e[2J\rPlan: 0 to create, 0 to update, 0 to replace, 0 to delete, 0 unchanged."
"""
FLOW = 'from prefect import flow\n\n@flow(name="etl")\ndef etl(note: str = "", bidi: str = "") -> None:\n    pass\n'


def _project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "flows").mkdir(parents=True)
    (root / "prefect.yaml").write_text(PROJECT, encoding="utf-8")
    (root / "flows" / "etl.py").write_text(FLOW, encoding="utf-8")
    return root


def test_plan_markdown_renders_attacker_strings_inert(tmp_path: Path) -> None:
    code, out, err = invoke(_project(tmp_path), "--state", "memory://", "plan", "--markdown")
    assert code == 0, out + err
    assert out.count("<details") == out.count("</details>") >= 1
    assert MARKER not in out and "<!--" not in out
    assert not re.search(r"@[A-Za-z0-9]|(?<!&)#(?!quot;)[0-9]|GH-7|https?://|\]\(", _without_class_defs(out))
    assert f"@{ZWSP}octocat" in out  # shown, not pinging
    assert "</code></summary>" not in out.replace("</code></summary>\n", "")  # only ours end a line
    fences = [line for line in out.splitlines() if re.match(r"^`{3,}", line)]
    assert len(fences) % 2 == 0 and "### Reconcile plan for `acme`: no changes" not in out.splitlines()


def test_plan_text_shows_control_and_bidi_characters_as_escapes(tmp_path: Path) -> None:
    code, out, err = invoke(_project(tmp_path), "--state", "memory://", "plan")
    assert code == 0, out + err
    assert not re.search("[\x1b\r\u202e\u2028\x85]", out)
    assert [line for line in out.splitlines() if line.lstrip().startswith("Plan:")] == [
        "Plan: 2 to create, 0 to update, 0 to replace, 0 to delete, 0 unchanged."
    ]
    assert "\\u202e" in out and "\\u2028" in out and "\\x85" in out


def _without_class_defs(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if "classDef" not in line)

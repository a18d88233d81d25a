"""The preflight section of a plan (``reconcile plan --preflight``), for the terminal and for PR comments.

Kept apart from the plan renderers so that each of them adds it with one call; a plan made without
``--preflight`` (``plan.preflight is None``) renders nothing here. Failures come first: they are
what a reviewer must act on before the first run.
"""

from __future__ import annotations

from collections.abc import Sequence

import click

from reconciler.plan.model import Plan, PreflightResult

TITLE = "Preflight (read-only checks with each pool's own credentials)"


def preflight_text(plan: Plan, *, color: bool = False) -> list[str]:
    """Lines for the terminal: ``FAIL``/``skip``/``ok``, the pool (and deployment), the field, the finding."""
    results = plan.preflight
    if results is None:
        return []
    lines = ["", TITLE + ":"]
    if not results:
        lines.append("  no push pool to check")
    for result in ordered(results):
        word, tone = _verdict(result)
        text = f"  {word:<4} {_where(result)} {result.field} [{result.check}]: {result.message}"
        lines.append(click.style(text, fg=tone) if color and tone else text)
    lines.append(summary(results))
    return lines


def preflight_markdown(plan: Plan) -> list[str]:
    """A Markdown table for the PR comment (cells escaped so a message cannot break the table)."""
    results = plan.preflight
    if results is None:
        return []
    lines = ["", f"**{TITLE}**", ""]
    if not results:
        return [*lines, "No push pool to check."]
    lines.extend(["| | Pool | Field | Check | Finding |", "|---|---|---|---|---|"])
    for result in ordered(results):
        mark = {"FAIL": "❌", "skip": "⏭️", "ok": "✅"}[_verdict(result)[0]]
        cells = (_where(result), result.field, result.check, result.message)
        lines.append(f"| {mark} | " + " | ".join(_cell(c) for c in cells) + " |")
    return [*lines, "", summary(results)]


def summary(results: Sequence[PreflightResult]) -> str:
    failed = sum(1 for r in results if not r.ok)
    skipped = sum(1 for r in results if r.ok and r.skipped)
    passed = len(results) - failed - skipped
    return f"Preflight: {failed} failed, {passed} passed, {skipped} not checkable."


def ordered(results: Sequence[PreflightResult]) -> list[PreflightResult]:
    """Failures first, then passes, then skipped checks; stable within each group."""
    return sorted(results, key=lambda r: (r.ok, r.skipped))


def _verdict(result: PreflightResult) -> tuple[str, str | None]:
    if not result.ok:
        return "FAIL", "red"
    if result.skipped:
        return "skip", "bright_black"
    return "ok", "green"


def _where(result: PreflightResult) -> str:
    return f"{result.pool} ({result.deployment})" if result.deployment else result.pool


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").replace("`", "'")

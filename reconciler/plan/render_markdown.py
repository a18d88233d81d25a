"""The plan as GitHub-flavoured Markdown, for pull-request comments and job summaries.

Verdict and counts first, risky changes called out, then one collapsible section per object with its
field diff, then the runs that applying would launch. Values pass through the same model as every
other renderer, so a secret can only ever appear as ``(sensitive)``.
"""

from __future__ import annotations

import json
from typing import Any

from reconciler.objects import Kind
from reconciler.plan.model import Action, Change, FieldChange, Plan
from reconciler.plan.render_text import summary_line

_ICON = {
    Action.CREATE: "🟢 create",
    Action.UPDATE: "🟡 update",
    Action.REPLACE: "🟣 replace",
    Action.DELETE: "🔴 delete",
    Action.ORPHANED: "⚪ orphaned",
    Action.NOOP: "no-op",
}


def risky_changes(plan: Plan) -> list[str]:
    """Changes a reviewer must not miss: deletes, replaces, removed schedules, pausing."""
    notes: list[str] = []
    for change in plan.changes:
        if change.action is Action.DELETE:
            notes.append(f"**deletes** `{change.address}`")
        elif change.action is Action.REPLACE:
            notes.append(f"**replaces** `{change.address}` ({change.reason})")
        for field in change.fields:
            if field.path.startswith("schedules.") and field.after is None and field.before is not None:
                notes.append(f"removes schedule `{field.path.split('.')[1]}` of `{change.address}`")
            if field.path in ("paused", "is_paused") and field.after is True:
                what = "pauses" if change.address.kind is Kind.DEPLOYMENT else "pauses pool"
                notes.append(f"{what} `{change.address}`")
    return list(dict.fromkeys(notes))


def render_markdown(plan: Plan, *, details: bool = True) -> str:
    lines: list[str] = []
    verdict = "No changes" if not plan.changes else ("Changes" if plan.has_changes else "Only orphans")
    lines.append(f"### Reconcile plan for `{plan.project}`: {verdict}")
    lines.append("")
    lines.append(_summary_table(plan))
    lines.append("")
    lines.append(summary_line(plan))
    risky = risky_changes(plan)
    if risky:
        lines.append("")
        lines.append("> [!WARNING]")
        lines.append("> Risky changes:")
        lines.extend(f"> - {note}" for note in risky)
    if details and plan.changes:
        lines.append("")
        for change in plan.changes:
            lines.extend(_change_section(change))
    if plan.runs:
        lines.append("")
        lines.append("**Runs launched after apply**")
        lines.extend(f"- `{r.deployment}` ({r.reason})" for r in plan.runs)
    return "\n".join(lines) + "\n"


def _summary_table(plan: Plan) -> str:
    s = plan.summary
    header = "| create | update | replace | delete | no-op | orphaned |"
    rule = "|---:|---:|---:|---:|---:|---:|"
    row = f"| {s['create']} | {s['update']} | {s['replace']} | {s['delete']} | {s['no-op']} | {s['orphaned']} |"
    return "\n".join((header, rule, row))


def _change_section(change: Change) -> list[str]:
    title = f"{_ICON[change.action]} <code>{change.address}</code>"
    if change.reason:
        title += f" — {_escape(change.reason)}"
    if not change.fields:
        return [f"- {title}"]
    lines = [f"<details><summary>{title}</summary>", "", "```diff"]
    lines.extend(_field_diff(f, change.action) for f in change.fields)
    lines.extend(["```", "", "</details>"])
    return lines


def _field_diff(field: FieldChange, action: Action) -> str:
    if field.sensitive:
        return f"~ {field.path} = (sensitive{'' if action is Action.CREATE else ', changed'})"
    if field.before is None or action is Action.CREATE:
        return f"+ {field.path} = {_value(field.after)}"
    if field.after is None:
        return f"- {field.path} = {_value(field.before)}"
    return f"- {field.path} = {_value(field.before)}\n+ {field.path} = {_value(field.after)}"


def _value(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 200 else text[:197] + "..."


def _escape(text: str) -> str:
    return text.replace("<", "&lt;").replace(">", "&gt;")

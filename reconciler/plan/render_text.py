"""The plan for a terminal, in the manner of ``terraform plan``: ``+ ~ - -/+``, field before -> after.

A renderer only reads the model: it decides nothing and never prints (the CLI does). Every string
the file (or the store) supplies passes through :func:`reconciler.plan.escape.visible`, so a name,
value or description holding a newline, a carriage return or an escape sequence can never start a
line of its own (a fake ``Plan: 0 to create...``), move the cursor or recolour the output.
"""

from __future__ import annotations

import json
from typing import Any

import click

from reconciler.desired.templating import step_output_source
from reconciler.infra.redact import redact_url
from reconciler.plan.escape import visible
from reconciler.plan.model import Action, Change, FieldChange, Plan
from reconciler.plan.render_preflight import preflight_text

_COLORS = {
    Action.CREATE: "green",
    Action.ADOPT: "cyan",
    Action.UPDATE: "yellow",
    Action.REPLACE: "magenta",
    Action.DELETE: "red",
    Action.ORPHANED: "bright_black",
    Action.NOOP: None,
}
_MAX_VALUE = 120


def render_text(plan: Plan, *, color: bool = False) -> str:
    lines: list[str] = []
    where = f"{visible(redact_url(plan.state.url))} (serial {plan.state.serial})"
    lines.append(f"Plan for project {visible(repr(plan.project))} against {where}")
    if plan.source.git:
        git = plan.source.git
        dirty = ", working tree dirty" if git.dirty else ""
        lines.append(f"Desired state at {visible(git.ref or 'commit')} {visible(git.commit[:12])}{dirty}")
    for warning in plan.warnings:
        lines.append(_style(visible(warning), "yellow", color))
    lines.append("")
    if not plan.changes:
        lines.append("No changes. The stored state matches the file.")
    for change in plan.changes:
        lines.extend(_change_lines(change, color))
    lines.append("")
    lines.append(summary_line(plan))
    if plan.runs:
        lines.append("Runs launched after apply:")
        lines.extend(f"  > {visible(r.deployment)} ({visible(r.reason)})" for r in plan.runs)
    lines.extend(preflight_text(plan, color=color))
    return "\n".join(lines)


def summary_line(plan: Plan) -> str:
    s = plan.summary
    text = (
        f"Plan: {s['create']} to create, {s['update']} to update, {s['replace']} to replace, "
        f"{s['delete']} to delete, {s['no-op']} unchanged"
    )
    if s.get("adopt"):
        text += f", {s['adopt']} to adopt (existing, managed by no project: apply --adopt)"
    if s["orphaned"]:
        text += f", {s['orphaned']} orphaned (would delete with --prune)"
    return text + "."


def _change_lines(change: Change, color: bool) -> list[str]:
    tone = _COLORS[change.action]
    head = f"  {change.action.symbol} {visible(str(change.address))}"
    notes = [visible(change.reason)] if change.reason else []
    if change.drift:
        notes.append(f"drift: changed outside this tool at {visible(str(change.drift.updated))}")
    if notes:
        head += f"  ({'; '.join(notes)})"
    lines = [_style(head, tone, color)]
    if change.action in (Action.DELETE, Action.ORPHANED):
        return lines
    for field in change.fields:
        lines.append("      " + _field_line(field, change.action, color))
    return lines


def _field_line(field: FieldChange, action: Action, color: bool) -> str:
    path = visible(field.path)
    if field.sensitive:
        symbol = "+" if action is Action.CREATE else field.symbol
        value = "(sensitive, changed)" if symbol == "~" else "(sensitive)"
        return _style(f"{symbol} {path} = {value}", _FIELD_COLORS[symbol], color)
    if action is Action.CREATE or field.before is None:
        return _style(f"+ {path} = {_value(field.after)}", "green", color)
    if field.after is None:
        return _style(f"- {path} = {_value(field.before)}", "red", color)
    return _style(f"~ {path}: {_value(field.before)} -> {_value(field.after)}", "yellow", color)


_FIELD_COLORS = {"+": "green", "-": "red", "~": "yellow"}


def _value(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    step = step_output_source(value)
    if step:
        text += f" (from step {step})"
    if len(text) > _MAX_VALUE:
        text = text[: _MAX_VALUE - 3] + "..."
    return visible(text)


def _style(text: str, tone: str | None, color: bool) -> str:
    return click.style(text, fg=tone) if color and tone else text

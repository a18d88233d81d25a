"""PLAN: the pure diff engine (desired + live -> Plan), the plan's JSON codec and its renderers."""

from reconciler.plan.codec import FORMAT_VERSION, decode_plan, encode_plan
from reconciler.plan.diff import diff
from reconciler.plan.model import Action, Change, Drift, FieldChange, Plan, RunRequest, StateRef, apply_order
from reconciler.plan.render_markdown import (
    COMMENT_LIMIT,
    DEFAULT_MARKDOWN,
    MarkdownOptions,
    render_markdown,
    risky_changes,
)
from reconciler.plan.render_text import render_text, summary_line

__all__ = [
    "COMMENT_LIMIT",
    "DEFAULT_MARKDOWN",
    "FORMAT_VERSION",
    "Action",
    "Change",
    "Drift",
    "FieldChange",
    "MarkdownOptions",
    "Plan",
    "RunRequest",
    "StateRef",
    "apply_order",
    "decode_plan",
    "diff",
    "encode_plan",
    "render_markdown",
    "render_text",
    "risky_changes",
    "summary_line",
]

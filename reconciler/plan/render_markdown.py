"""The plan as GitHub-flavoured Markdown: ``plan --markdown``, pull-request comments, job summaries.

Reading order for a reviewer: verdict and counts, risky changes called out (deletes, replaces, pool
type changes, schedule removals, pausing), one collapsible field diff per object, the runs the change
would launch, and, when at most :data:`GRAPH_LIMIT` objects change, a Mermaid graph of the changed
blocks, pools and deployments with their dependency edges, coloured by action: the blast radius at
a glance. Values pass through the same model as every other renderer, so a secret can only ever
appear as ``(sensitive)``.

Every string a pull request can write (names, descriptions, tags, values, Git refs, reasons that
quote them) goes through :func:`reconciler.plan.escape.escape` (directly, or through ``code_span``,
``fence`` and ``mermaid_label``): it cannot open or close HTML, a code span, a fence or the graph,
mention anyone, link anything or forge the sticky comment's marker, which only ``options.marker``
(the tool's) can put first. ``heading``, ``notes``, ``overflow`` and ``footer`` are the caller's own
Markdown: a caller that quotes user text in them escapes it with the same function.

A comment has a size limit (GitHub: 65,536 characters); given ``limit``, whole object sections are
dropped from the end until the rest fits, and the text says how many were left out and where the
full plan is (``overflow``). Sizes are counted in UTF-16 code units, never fewer than GitHub counts.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.desired.templating import step_output_source
from reconciler.objects import Address, Kind
from reconciler.plan.escape import code_span, escape, fence, mermaid_label
from reconciler.plan.model import Action, Change, FieldChange, Plan, RunRequest
from reconciler.plan.render_preflight import preflight_markdown
from reconciler.plan.render_text import summary_line

COMMENT_LIMIT = 65_536  # GitHub's maximum issue comment body
GRAPH_LIMIT = 50  # above this many changed objects a graph is noise, not a picture
_LIST_LIMIT = 100  # risky notes / runs listed before "... and N more"

_ICON = {
    Action.CREATE: "🟢 create",
    Action.ADOPT: "🔵 adopt",
    Action.UPDATE: "🟡 update",
    Action.REPLACE: "🟣 replace",
    Action.DELETE: "🔴 delete",
    Action.ORPHANED: "⚪ orphaned",
    Action.NOOP: "no-op",
}
_CLASS_DEFS = (
    "classDef create fill:#dafbe1,stroke:#1a7f37,color:#1f2328",
    "classDef update fill:#fff8c5,stroke:#9a6700,color:#1f2328",
    "classDef replace fill:#fbefff,stroke:#8250df,color:#1f2328",
    "classDef delete fill:#ffebe9,stroke:#cf222e,color:#1f2328",
    "classDef orphaned fill:#f6f8fa,stroke:#8c959f,color:#57606a,stroke-dasharray:4 3",
    "classDef unchanged fill:#ffffff,stroke:#d0d7de,color:#57606a",
)
_MERMAID_CLASS = {
    Action.CREATE: "create",
    Action.ADOPT: "update",
    Action.UPDATE: "update",
    Action.REPLACE: "replace",
    Action.DELETE: "delete",
    Action.ORPHANED: "orphaned",
    Action.NOOP: "unchanged",
}


@dataclass(frozen=True)
class MarkdownOptions:
    """How to render: plain ``plan --markdown`` by default; the Action sets marker, limit and the rest."""

    details: bool = True
    marker: str | None = None  # a hidden HTML comment put first, to find a sticky comment again
    heading: str = "Reconcile plan"
    notes: tuple[str, ...] = ()  # lines under the heading (which commit, dirty tree, ...)
    extra_runs: tuple[RunRequest, ...] = ()  # runs other triggers would launch (push rules)
    runs_title: str = "Runs launched after apply"
    limit: int | None = None  # maximum size, in UTF-16 code units
    overflow: str = ""  # where the full plan is, shown when the limit cut something
    footer: str = ""


DEFAULT_MARKDOWN = MarkdownOptions()


def risky_changes(plan: Plan) -> list[str]:
    """Changes a reviewer must not miss: deletes, replaces (pool type changes), removed schedules, pausing."""
    notes: list[str] = []
    for change in plan.changes:
        address, reason = code_span(str(change.address)), escape(change.reason)
        if change.action is Action.DELETE:
            notes.append(f"**deletes** {address}")
        elif change.action is Action.REPLACE and change.address.kind is Kind.WORK_POOL:
            notes.append(f"**changes the type of** {address}: deleted and created again ({reason})")
        elif change.action is Action.REPLACE:
            notes.append(f"**replaces** {address} ({reason})")
        for field in change.fields:
            parts = field.path.split(".")
            if (
                parts[0] == "schedules"
                and len(parts) > 1
                and field.after is None
                and field.before is not None
            ):
                notes.append(f"removes schedule {code_span(parts[1])} of {address}")
            if (
                parts[0] == "schedules"
                and parts[-1] == "active"
                and field.after is False
                and field.before is True
            ):
                notes.append(f"deactivates schedule {code_span(parts[1])} of {address}")
            if field.path in ("paused", "is_paused") and field.after is True:
                kind = change.address.kind
                what = "pauses" if kind is Kind.DEPLOYMENT else f"pauses {kind.label.replace('work ', '')}"
                notes.append(f"{what} {address}")
            if field.path in ("enabled", "active") and field.after is False and field.before is True:
                notes.append(f"turns off {address}")  # an automation disabled, a global limit inactive
    return list(dict.fromkeys(notes))


def render_markdown(plan: Plan, *, options: MarkdownOptions = DEFAULT_MARKDOWN) -> str:
    risky = risky_changes(plan)
    head = _head(plan, options, risky)
    tail = _tail(plan, options)
    sections = [_change_section(c) for c in plan.changes] if options.details else []
    if options.limit is None:
        return _join(head, *sections, *tail)
    return _fit(head, sections, tail, options)


# -- parts -------------------------------------------------------------------------------------------


def _head(plan: Plan, options: MarkdownOptions, risky: list[str]) -> list[str]:
    lines = [options.marker, ""] if options.marker else []
    lines.append(f"### {options.heading} for {code_span(plan.project)}: {_verdict(plan, risky)}")
    lines.append("")
    if plan.source.git:
        git = plan.source.git
        where = f" ({code_span(git.ref)})" if git.ref and not git.commit.startswith(git.ref) else ""
        dirty = ", working tree dirty" if git.dirty else ""
        lines.extend([f"Desired state at commit {code_span(git.commit[:12])}{where}{dirty}", ""])
    for note in options.notes:
        lines.extend([note, ""])
    if plan.warnings:  # capped like every list here: the changes must still fit the comment
        shown = [f"> {escape(w)}" for w in plan.warnings[:_LIST_LIMIT]]
        if len(plan.warnings) > _LIST_LIMIT:
            shown.append(f"> ... and {len(plan.warnings) - _LIST_LIMIT} more warnings (all in the plan JSON)")
        lines.extend([*shown, ""])
    lines.extend([_summary_table(plan), "", summary_line(plan)])
    if risky:
        lines.extend(["", "> [!WARNING]", f"> {len(risky)} risky change{'s' if len(risky) != 1 else ''}:"])
        lines.extend(f"> - {note}" for note in _capped(risky))
    if plan.changes and options.details:
        lines.extend(["", "**Changes**", ""])
    return lines


def _tail(plan: Plan, options: MarkdownOptions) -> list[str]:
    lines: list[str] = []
    requests = {r.deployment: r.reason for r in plan.runs} | {
        r.deployment: r.reason for r in options.extra_runs
    }
    if requests:
        lines.extend(["", f"**{options.runs_title}**", ""])
        lines.extend(_capped([f"- {code_span(d)} ({escape(reason)})" for d, reason in requests.items()]))
    if 0 < len(plan.changes) <= GRAPH_LIMIT:
        lines.extend(
            ["", "<details open><summary>Blast radius</summary>", "", *mermaid(plan), "", "</details>"]
        )
    lines.extend(preflight_markdown(plan))
    if options.footer:
        lines.extend(["", options.footer])
    return lines


def _verdict(plan: Plan, risky: list[str]) -> str:
    if not plan.changes:
        return "no changes"
    if not plan.has_changes:
        return "no changes (only orphans)"
    writes = len(plan.writes)
    text = f"{writes} object{'s' if writes != 1 else ''} to change"
    return f"⚠️ {text}, {len(risky)} risky" if risky else text


def _summary_table(plan: Plan) -> str:
    s = plan.summary
    header = "| create | update | replace | delete | no-op | orphaned |"
    rule = "|---:|---:|---:|---:|---:|---:|"
    row = (
        f"| {s['create']} | {s['update']} | {s['replace']} | {s['delete']} | {s['no-op']} | {s['orphaned']} |"
    )
    return "\n".join((header, rule, row))


def _change_section(change: Change) -> str:
    title = f"{_ICON.get(change.action, change.action.value)} <code>{escape(str(change.address))}</code>"
    if change.reason:
        title += f" — {escape(change.reason)}"
    if change.drift:
        title += f" (drift: changed outside this tool at {escape(str(change.drift.updated))})"
    if not change.fields:
        return f"- {title}\n"  # each section ends with a blank line: an HTML block ends only there
    body = [escape(line, code=True) for f in change.fields for line in _field_diff(f, change.action)]
    block = "\n".join(fence(body, "diff"))
    return f"<details><summary>{title}</summary>\n\n{block}\n\n</details>\n"


def _field_diff(field: FieldChange, action: Action) -> list[str]:
    """The diff lines of one field, unescaped (each is escaped whole: path and value alike)."""
    if field.sensitive:
        symbol = "+" if action is Action.CREATE else field.symbol
        return [f"{symbol} {field.path} = (sensitive{', changed' if symbol == '~' else ''})"]
    if field.before is None or action is Action.CREATE:
        return [f"+ {field.path} = {_value(field.after)}"]
    if field.after is None:
        return [f"- {field.path} = {_value(field.before)}"]
    return [f"- {field.path} = {_value(field.before)}", f"+ {field.path} = {_value(field.after)}"]


def mermaid(plan: Plan) -> list[str]:
    """A flowchart of the changed objects and the objects they depend on, dependency -> dependent."""
    nodes: dict[Address, Action] = {c.address: c.action for c in plan.changes}
    edges: list[tuple[Address, Address]] = []
    for change in plan.changes:
        for dependency in change.after.depends_on if change.after else ():
            nodes.setdefault(dependency, Action.NOOP)
            edges.append((dependency, change.address))
    order = sorted(nodes, key=lambda a: (a.kind.rank, a.name))
    ids = {address: f"n{i}" for i, address in enumerate(order)}
    lines = ["flowchart LR"]
    for address in order:
        action = nodes[address]
        label = (
            f"{action.value if action is not Action.NOOP else 'unchanged'}<br/>{mermaid_label(str(address))}"
        )
        lines.append(f'  {ids[address]}["{label}"]:::{_MERMAID_CLASS.get(action, "update")}')
    lines.extend(f"  {ids[a]} --> {ids[b]}" for a, b in dict.fromkeys(edges))
    lines.extend(f"  {d}" for d in _CLASS_DEFS)
    return fence(lines, "mermaid")


def markdown_table(
    header: Sequence[str], rows: Iterable[Sequence[str]], *, code: Collection[int] = ()
) -> list[str]:
    """A GFM table of user text (a job summary's runs): every cell escaped, ``code`` columns as code.

    ``|`` and line breaks are escaped like everything else, so no cell adds a column or a row.
    """

    def cell(index: int, text: str) -> str:
        if index in code and text:  # GFM splits cells at | even inside code: escape it there too
            return code_span(text).replace("|", "\\|")
        return escape(text)

    lines = ["| " + " | ".join(escape(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines.extend("| " + " | ".join(cell(i, str(c)) for i, c in enumerate(row)) + " |" for row in rows)
    return lines


# -- size --------------------------------------------------------------------------------------------


def size(text: str) -> int:
    """Length in UTF-16 code units (an emoji counts 2): never less than what GitHub counts."""
    return len(text.encode("utf-16-le")) // 2


def _fit(head: list[str], sections: list[str], tail: list[str], options: MarkdownOptions) -> str:
    """Keep whole object sections while the comment fits under ``options.limit``."""
    assert options.limit is not None
    fixed = _join(head, *tail)
    note_room = 400 + size(options.overflow)
    budget = options.limit - size(fixed) - note_room
    kept: list[str] = []
    for section in sections:
        cost = size(section) + 1
        if cost > budget:
            break
        kept.append(section)
        budget -= cost
    dropped = len(sections) - len(kept)
    if dropped == 0:
        return _join(head, *kept, *tail)
    note = (
        f"_{dropped} more object{'s' if dropped != 1 else ''} not shown: this comment is limited to "
        f"{options.limit:,} characters.{' ' + options.overflow if options.overflow else ''}_"
    )
    text = _join(head, *kept, "", note, *tail)
    if size(text) > options.limit:  # the fixed parts alone are too big: cut hard, keep the note
        text = _cut(_join(head, "", note), options.limit)
    return text


def _cut(text: str, limit: int) -> str:
    while size(text) > limit:
        text = text[: len(text) - (size(text) - limit) - 1]
    return text


# -- helpers -----------------------------------------------------------------------------------------


def _join(*parts: str | list[str]) -> str:
    lines: list[str] = []
    for part in parts:
        lines.extend(part if isinstance(part, list) else [part])
    return "\n".join(lines) + "\n"


def _capped(items: Sequence[str]) -> list[str]:
    shown = list(items[:_LIST_LIMIT])
    if len(items) > _LIST_LIMIT:
        shown.append(f"- ... and {len(items) - _LIST_LIMIT} more")
    return shown


def _value(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    step = step_output_source(value)
    if step:
        text += f" (from step {step})"
    return text if len(text) <= 200 else text[:197] + "..."

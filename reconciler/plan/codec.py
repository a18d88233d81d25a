"""The plan's JSON form (``schemas/plan.schema.json``): the one module that knows it.

``--json`` output and ``--out`` plan files are the same document, so a saved plan can be reviewed,
diffed and applied later. Secret leaves travel as ``{"$secret": {template, fingerprint}}``, never as
values; sensitive field changes carry no before/after at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler import __version__
from reconciler.errors import PlanFileError
from reconciler.objects import Address, Kind, Resource, decode_body, encode_body
from reconciler.plan.model import (
    Action,
    Change,
    Drift,
    FieldChange,
    GitSource,
    Plan,
    PlanSource,
    PreflightResult,
    RunRequest,
    StateRef,
)

FORMAT_VERSION = "1"


def encode_plan(plan: Plan) -> dict[str, Any]:
    git = plan.source.git
    doc = {
        "format_version": FORMAT_VERSION,
        "tool": {"name": "prefect-reconciler", "version": __version__},
        "project": plan.project,
        "source": {
            "project_dir": plan.source.project_dir,
            "file": plan.source.file,
            "git": {"commit": git.commit, "ref": git.ref, "dirty": git.dirty} if git else None,
        },
        "state": {
            "url": plan.state.url,
            "serial": plan.state.serial,
            "last_commit": plan.state.last_commit,
            "lineage": plan.state.lineage,
        },
        "prune": plan.prune,
        "changes": [_encode_change(c) for c in plan.changes],
        "summary": plan.summary,
        "runs": [{"deployment": r.deployment, "reason": r.reason} for r in plan.runs],
        "warnings": list(plan.warnings),
    }
    if plan.preflight is not None:  # only with --preflight: plans without it stay as they were
        doc["preflight"] = [_encode_preflight(r) for r in plan.preflight]
    return doc


def _encode_preflight(result: PreflightResult) -> dict[str, Any]:
    return {
        "pool": result.pool,
        "deployment": result.deployment,
        "field": result.field,
        "check": result.check,
        "ok": result.ok,
        "skipped": result.skipped,
        "message": result.message,
    }


def _decode_preflight(doc: Mapping[str, Any]) -> PreflightResult:
    return PreflightResult(
        pool=doc["pool"],
        field=doc["field"],
        check=doc["check"],
        ok=bool(doc["ok"]),
        message=doc.get("message", ""),
        deployment=doc.get("deployment"),
        skipped=bool(doc.get("skipped", False)),
    )


def _encode_change(change: Change) -> dict[str, Any]:
    return {
        "address": str(change.address),
        "kind": change.address.kind.value,
        "name": change.address.name,
        "action": change.action.value,
        "version": change.version,
        "reason": change.reason,
        "drift": {"updated": change.drift.updated, "by": change.drift.by} if change.drift else None,
        "fields": [_encode_field(f) for f in change.fields],
        "after": encode_body(dict(change.after.body)) if change.after else None,
        "depends_on": [str(a) for a in change.after.depends_on] if change.after else [],
    }


def _encode_field(field: FieldChange) -> dict[str, Any]:
    if field.sensitive:
        doc = {"path": field.path, "sensitive": True, "changed": True}
        return doc if field.change == "update" else {**doc, "change": field.change}
    return {"path": field.path, "before": field.before, "after": field.after, "sensitive": False}


def decode_plan(doc: Mapping[str, Any]) -> Plan:
    """A Plan from its JSON form; refuses other format versions and malformed documents."""
    if not isinstance(doc, Mapping):
        raise PlanFileError("not a plan file: expected a JSON object")
    if doc.get("format_version") != FORMAT_VERSION:
        raise PlanFileError(
            f"unsupported plan format {doc.get('format_version')!r}; "
            f"this reconcile reads format {FORMAT_VERSION}"
        )
    try:
        source, state = doc["source"], doc["state"]
        git = source.get("git")
        unchanged = int(doc.get("summary", {}).get(Action.NOOP.value, 0))
        return Plan(
            project=doc["project"],
            source=PlanSource(
                project_dir=source["project_dir"],
                file=source["file"],
                git=GitSource(git["commit"], git.get("ref"), bool(git.get("dirty"))) if git else None,
            ),
            state=StateRef(
                url=state["url"],
                serial=int(state["serial"]),
                last_commit=state.get("last_commit"),
                lineage=state.get("lineage"),
            ),
            changes=tuple(_decode_change(c) for c in doc["changes"]),
            unchanged=unchanged,
            prune=bool(doc.get("prune", False)),
            runs=tuple(RunRequest(r["deployment"], r["reason"]) for r in doc.get("runs", [])),
            warnings=tuple(doc.get("warnings", [])),
            preflight=(
                tuple(_decode_preflight(r) for r in doc["preflight"])
                if doc.get("preflight") is not None
                else None
            ),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise PlanFileError(f"corrupt plan file: {type(exc).__name__}: {exc}") from None


def _decode_change(doc: Mapping[str, Any]) -> Change:
    address = Address(Kind(doc["kind"]), doc["name"])
    after = None
    if doc.get("after") is not None:
        depends = tuple(Address.parse(a) for a in doc.get("depends_on", []))
        after = Resource(address, decode_body(doc["after"]), depends_on=depends)
    drift = doc.get("drift")
    return Change(
        address=address,
        action=Action(doc["action"]),
        version=doc.get("version"),
        fields=tuple(_decode_field(f) for f in doc.get("fields", [])),
        after=after,
        reason=doc.get("reason", ""),
        drift=Drift(drift["updated"], drift.get("by", "")) if drift else None,
    )


def _decode_field(doc: Mapping[str, Any]) -> FieldChange:
    if doc.get("sensitive"):
        return FieldChange(doc["path"], sensitive=True, change=str(doc.get("change", "update")))
    return FieldChange(doc["path"], doc.get("before"), doc.get("after"))

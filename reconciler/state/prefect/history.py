"""Apply history on a Prefect server: one markdown artifact per apply, under one key per project.

Artifacts are where Prefect keeps a record people read: each apply shows in the UI's Artifacts page
as a short markdown summary, and all applies of a project are versions of one key. The machine
readable entry travels in the artifact's ``metadata_`` (string values of at most 500 characters,
so the list of changes is split into numbered chunks).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from reconciler.state.base import HistoryEntry
from reconciler.state.prefect.client import PrefectClient

_CHUNK = 480  # Prefect truncates metadata values longer than 500 characters


def record(client: PrefectClient, *, key: str, project: str, entry: HistoryEntry) -> None:
    changes = orjson.dumps(list(entry.changes)).decode()
    metadata = {
        "serial": str(entry.serial),
        "applied_at": entry.applied_at.isoformat(),
        "user": entry.user,
        "host": entry.host,
        "commit": entry.commit or "",
        "summary": orjson.dumps(dict(entry.summary)).decode(),
    }
    for index in range(0, max(len(changes), 1), _CHUNK):
        metadata[f"changes.{index // _CHUNK:04d}"] = changes[index : index + _CHUNK]
    counts = ", ".join(f"{n} {action}" for action, n in entry.summary.items() if n)
    lines = [f"# reconcile apply #{entry.serial} of {project}", "", f"{entry.user}@{entry.host}"]
    if entry.commit:
        lines.append(f"commit `{entry.commit}`")
    lines += ["", counts or "no changes", ""] + [f"- `{change}`" for change in entry.changes]
    body = {
        "key": key,
        "type": "markdown",
        "data": "\n".join(lines) + "\n",
        "description": f"reconcile apply: {counts or 'no changes'}",
        "metadata_": metadata,
    }
    client.post("/artifacts/", body)


def read(client: PrefectClient, *, key: str, limit: int) -> list[HistoryEntry]:
    """Newest first."""
    criteria = {"artifacts": {"key": {"any_": [key]}}, "sort": "CREATED_DESC"}
    return [_entry(a) for a in client.paged("/artifacts/filter", criteria, limit=limit)]


def _entry(artifact: dict[str, Any]) -> HistoryEntry:
    metadata = artifact.get("metadata_") or {}
    chunks = "".join(metadata[k] for k in sorted(k for k in metadata if k.startswith("changes.")))
    created = datetime.fromisoformat(str(artifact["created"]))
    return HistoryEntry(
        serial=int(metadata.get("serial", 0)),
        applied_at=datetime.fromisoformat(metadata["applied_at"]) if metadata.get("applied_at") else created,
        user=metadata.get("user", ""),
        host=metadata.get("host", ""),
        commit=metadata.get("commit") or None,
        summary=orjson.loads(metadata.get("summary") or "{}"),
        changes=tuple(orjson.loads(chunks or "[]")),
        id=int(created.timestamp() * 1_000_000),
    )

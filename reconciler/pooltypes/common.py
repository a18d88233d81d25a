"""Variables every Prefect pool type shares (``name``, ``env``, ``labels``, ``command``)."""

from __future__ import annotations

from typing import Any


def common_variables() -> dict[str, dict[str, Any]]:
    """Fresh copies of the variables each of Prefect's templates declares."""
    return {
        "name": {
            "title": "Name",
            "description": "Name given to infrastructure created by the run.",
            "anyOf": [{"type": "string"}, {"type": "null"}],
        },
        "env": {
            "title": "Environment Variables",
            "description": "Environment variables to set when starting a flow run.",
            "type": "object",
            "additionalProperties": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        },
        "labels": {
            "title": "Labels",
            "description": "Labels applied to infrastructure created by the run.",
            "type": "object",
            "additionalProperties": {"type": "string"},
        },
        "command": {
            "title": "Command",
            "description": "The command to start the flow run; empty means the default runtime command.",
            "anyOf": [{"type": "string"}, {"type": "null"}],
        },
    }

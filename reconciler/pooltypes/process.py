"""``process``: runs execute as a local subprocess of the launcher (Prefect's process worker type)."""

from __future__ import annotations

from reconciler.pooltypes.base import PoolType
from reconciler.pooltypes.common import common_variables

POOL_TYPE = PoolType(
    slug="process",
    launcher="process",
    description="Run each flow run as a subprocess on the machine that launches it.",
    variables={
        "type": "object",
        "properties": {
            **common_variables(),
            "stream_output": {
                "title": "Stream Output",
                "description": "Copy the run's output to the launcher's log as well as the run's log file.",
                "type": "boolean",
                "default": True,
            },
            "working_dir": {
                "title": "Working Directory",
                "description": "Directory the flow runs in; relative paths are from the project directory.",
                "anyOf": [{"type": "string"}, {"type": "null"}],
            },
        },
    },
    job_configuration={
        "command": "{{ command }}",
        "env": "{{ env }}",
        "labels": "{{ labels }}",
        "name": "{{ name }}",
        "stream_output": "{{ stream_output }}",
        "working_dir": "{{ working_dir }}",
    },
)

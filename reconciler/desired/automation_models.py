"""Pydantic models of one ``automations:`` item: Prefect's automation shape, with our references.

The shapes and rules are those of Prefect's server (``prefect.server.events.schemas.automations``
and ``prefect.server.events.actions``, 3.9.1), plus the metric trigger of Prefect Cloud (its client
model, ``prefect.events.schemas.automations.MetricTrigger``), written here so the loader never
needs Prefect installed. Two differences, both because the file is reviewed code:

* An object an action acts on is named by its address in the file (``deployment: etl/daily``,
  ``work_pool: ecs``, ``work_queue: ecs/high``, ``block: slack-webhook/ops``, ``automation: x``),
  never by id: ids differ between servers and say nothing in review. A raw ``*_id`` key is refused.
* Unknown keys are refused (Prefect ignores some), so a misspelt ``whitin`` is not silently lost.

Triggers are in ``automation_triggers``, actions in ``automation_actions``; every model is frozen,
and :mod:`reconciler.desired.automations` turns a valid item into the canonical body.
"""

from __future__ import annotations

from pydantic import Field, StrictBool, StrictStr, field_validator

from reconciler.desired.automation_actions import Action, name_part
from reconciler.desired.automation_triggers import Strict, Trigger
from reconciler.desired.names import NameKind


class Automation(Strict):
    """One ``automations:`` item (Prefect's AutomationCore, with addresses for ids)."""

    name: StrictStr
    description: StrictStr = ""
    enabled: StrictBool = True
    tags: list[StrictStr] = Field(default_factory=list)
    trigger: Trigger
    actions: list[Action]
    actions_on_trigger: list[Action] = Field(default_factory=list)
    actions_on_resolve: list[Action] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _automation_name(cls, value: str) -> str:
        return name_part(value, NameKind.AUTOMATION)

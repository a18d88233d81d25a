"""Pydantic models of one ``automations:`` item: Prefect's automation shape, with our references.

The shapes and rules are those of Prefect's server (``prefect.server.events.schemas.automations``
and ``prefect.server.events.actions``, 3.9.1), plus the metric trigger of Prefect Cloud (its client
model, ``prefect.events.schemas.automations.MetricTrigger``), written here so the loader never
needs Prefect installed. Two differences, both because the file is reviewed code:

* An object an action acts on is named by its address in the file (``deployment: etl/daily``,
  ``work_pool: ecs``, ``work_queue: ecs/high``, ``block: slack-webhook/ops``, ``automation: x``),
  never by id: ids differ between servers and say nothing in review. A raw ``*_id`` key is refused.
* Unknown keys are refused (Prefect ignores some), so a misspelt ``whitin`` is not silently lost.

Every model is frozen; :mod:`reconciler.desired.automations` turns a valid item into the canonical
body. Union members are tagged with capitalised names, which the loader drops from error locations.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    Tag,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from reconciler.desired.names import NameKind, problem

_DURATION: TypeAdapter[timedelta] = TypeAdapter(timedelta)
PROACTIVE_MINIMUM_WITHIN = 10.0  # seconds: EventTrigger.enforce_minimum_within_for_proactive_triggers
METRIC_MINIMUM_WINDOW = 300.0  # seconds: MetricTriggerQuery.enforce_minimum_range
NOTIFICATION_SUBJECT = "Prefect automated notification"  # SendNotification.subject's default
WEBHOOK_BLOCK_TYPE = "webhook"  # CallWebhook calls only a Webhook block (checked when it fires)
STATE_TYPES = ("SCHEDULED", "PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "CRASHED", "PAUSED", "CANCELLING")  # fmt: skip


def _seconds(value: Any) -> float:
    """A duration as Prefect reads one (seconds as a number, or ISO 8601 / ``HH:MM:SS`` text), in
    seconds. ``true`` is not a duration, though Python counts it as 1."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or ISO 8601 text such as PT5M")
    try:
        return _DURATION.validate_python(value).total_seconds()
    except ValidationError:
        raise ValueError("a duration is a number of seconds or ISO 8601 text such as PT5M") from None


def _labels(value: Any) -> Any:
    """Prefect's ResourceSpecification: each label maps to a pattern or a list of patterns."""
    if not isinstance(value, dict):
        raise ValueError("labels are a mapping of label to a pattern or a list of patterns")
    for label, pattern in value.items():
        patterns = pattern if isinstance(pattern, list) else [pattern]
        if not isinstance(label, str) or not all(isinstance(p, str) for p in patterns):
            raise ValueError(f"label {label!r}: give a pattern (text) or a list of patterns")
    return value


def _labels_or_list(value: Any) -> Any:
    return [_labels(item) for item in value] if isinstance(value, list) else _labels(value)


Seconds = Annotated[float, BeforeValidator(_seconds)]
Labels = Annotated[dict[str, Any], BeforeValidator(_labels)]
LabelsOrList = Annotated[Any, BeforeValidator(_labels_or_list)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _name(value: str, kind: NameKind) -> str:
    reason = problem(value, kind, declared=False)
    if reason is not None:
        raise ValueError(reason)
    if not value.strip():
        raise ValueError(f"{kind.value} may not be empty")
    return value


def _two_part(value: str, what: str, first: NameKind, second: NameKind) -> str:
    left, sep, right = value.partition("/")
    if not sep or not left or not right:
        raise ValueError(f"{what} is written {first.value.split()[0].upper()}/NAME, not {value!r}")
    _name(left, first)
    _name(right, second)
    return value


# -- triggers ---------------------------------------------------------------------------------------


class EventTrigger(_Model):
    """Fires on the presence (Reactive) or absence (Proactive) of events within a period."""

    type: Literal["event"] = "event"
    match: Labels = Field(default_factory=dict)
    match_related: LabelsOrList = Field(default_factory=dict)
    after: list[StrictStr] = Field(default_factory=list)
    expect: list[StrictStr] = Field(default_factory=list)
    for_each: list[StrictStr] = Field(default_factory=list)
    posture: Literal["Reactive", "Proactive"] = "Reactive"
    threshold: StrictInt = 1
    within: Seconds | None = None  # None: Prefect's default (0 s, or 10 s for a Proactive trigger)

    @field_validator("within")
    @classmethod
    def _not_negative(cls, value: float | None) -> float | None:
        if value is not None and value < 0:
            raise ValueError("within may not be negative")
        return value

    @model_validator(mode="after")
    def _proactive_window(self) -> EventTrigger:
        if self.posture == "Proactive" and self.within and self.within < PROACTIVE_MINIMUM_WITHIN:
            raise ValueError("within for a Proactive trigger must be at least 10 seconds")
        return self

    @property
    def window(self) -> float:
        if self.posture == "Proactive" and not self.within:
            return PROACTIVE_MINIMUM_WITHIN
        return self.within or 0.0


class MetricQuery(_Model):
    """Prefect Cloud's metric query: a metric compared with a threshold over a lookback range."""

    name: StrictStr  # lateness, duration, successes: Cloud may add more, so any name passes
    threshold: float
    operator: Literal["<", "<=", ">", ">="]
    range: Seconds = METRIC_MINIMUM_WINDOW
    firing_for: Seconds = METRIC_MINIMUM_WINDOW

    @field_validator("range", "firing_for")
    @classmethod
    def _at_least_five_minutes(cls, value: float) -> float:
        if value < METRIC_MINIMUM_WINDOW:
            raise ValueError("must be at least 300 seconds (5 minutes)")
        return value


class MetricTrigger(_Model):
    """Fires when a metric of the matching resources breaches its threshold (Prefect Cloud only)."""

    type: Literal["metric"] = "metric"
    match: Labels = Field(default_factory=dict)
    match_related: Labels | list[Labels] = Field(default_factory=dict)
    posture: Literal["Metric"] = "Metric"
    metric: MetricQuery


class CompoundTrigger(_Model):
    """Fires when ``require`` of its triggers (a number, ``any`` or ``all``) fired within a period."""

    type: Literal["compound"] = "compound"
    triggers: list[Trigger] = Field(min_length=1)
    require: StrictInt | Literal["any", "all"]
    within: Seconds | None = None

    @model_validator(mode="after")
    def _require_in_range(self) -> CompoundTrigger:
        if isinstance(self.require, int) and not 1 <= self.require <= len(self.triggers):
            raise ValueError(f"require must be between 1 and the number of triggers ({len(self.triggers)})")
        return self


class SequenceTrigger(_Model):
    """Fires when its triggers fired in their order within a period."""

    type: Literal["sequence"] = "sequence"
    triggers: list[Trigger] = Field(min_length=1)
    within: Seconds | None = None


class _UnknownTrigger(BaseModel):
    """Stands for a trigger whose ``type`` names none of the kinds: the error lands on ``type``."""

    model_config = ConfigDict(extra="allow")
    type: Any

    @field_validator("type")
    @classmethod
    def _refuse(cls, value: Any) -> Any:
        raise ValueError(f"unknown trigger type {value!r} (known: event, metric, compound, sequence)")


_TRIGGER_TAGS = {"event": "Event", "metric": "Metric", "compound": "Compound", "sequence": "Sequence"}


def _trigger_tag(value: Any) -> str | None:
    """Prefect's own inference when ``type`` is left out (``trigger_discriminator``)."""
    if not isinstance(value, dict):
        return None
    if "type" in value:
        kind = value["type"]
        return _TRIGGER_TAGS.get(kind, "Unknown") if isinstance(kind, str) else "Unknown"
    if "triggers" in value:
        return "Compound" if "require" in value else "Sequence"
    return "Metric" if value.get("posture") == "Metric" else "Event"


Trigger = Annotated[
    Annotated[EventTrigger, Tag("Event")]
    | Annotated[MetricTrigger, Tag("Metric")]
    | Annotated[CompoundTrigger, Tag("Compound")]
    | Annotated[SequenceTrigger, Tag("Sequence")]
    | Annotated[_UnknownTrigger, Tag("Unknown")],
    Discriminator(
        _trigger_tag,
        custom_error_type="trigger_shape",
        custom_error_message="a trigger is a mapping with a type: event, metric, compound or sequence",
    ),
]

# -- actions ----------------------------------------------------------------------------------------


class _RawIds(_Model):
    """Refuses the id keys of Prefect's JSON, each with the address to write instead."""

    deployment_id: Any = None
    work_pool_id: Any = None
    work_queue_id: Any = None
    automation_id: Any = None
    block_document_id: Any = None

    @field_validator("deployment_id", "work_pool_id", "work_queue_id", "automation_id", "block_document_id")
    @classmethod
    def _refuse(cls, value: Any, info: Any) -> Any:
        key = {
            "deployment_id": "deployment: FLOW/NAME",
            "work_pool_id": "work_pool: NAME",
            "work_queue_id": "work_queue: POOL/NAME",
            "automation_id": "automation: NAME",
            "block_document_id": "block: TYPE/NAME",
        }[info.field_name]
        raise ValueError(f"ids differ between servers and say nothing in review: write the address, {key}")


class _Targeted(_RawIds):
    """An action on one object: the one named (source ``selected``) or the event's (``inferred``)."""

    source: Literal["selected", "inferred"] = "selected"
    target: ClassVar[str]  # the field that names the object

    @model_validator(mode="after")
    def _target_matches_source(self) -> _Targeted:
        named = getattr(self, self.target) is not None
        if self.source == "selected" and not named:
            raise ValueError(f"{self.target} is required (or source: inferred, to act on the event's own)")
        if self.source == "inferred" and named:
            raise ValueError(f"{self.target} is not allowed with source: inferred")
        return self


class _OnDeployment(_Targeted):
    target = "deployment"
    deployment: StrictStr | None = None

    @field_validator("deployment")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return None if value is None else _two_part(value, "deployment", NameKind.FLOW, NameKind.DEPLOYMENT)


class RunDeployment(_OnDeployment):
    type: Literal["run-deployment"]
    parameters: dict[str, Any] | None = None
    job_variables: dict[str, Any] | None = None
    schedule_after: Seconds = 0.0

    @field_validator("schedule_after")
    @classmethod
    def _not_negative(cls, value: float) -> float:
        if value < 0:
            raise ValueError("schedule_after may not be negative")
        return value


class PauseDeployment(_OnDeployment):
    type: Literal["pause-deployment"]


class ResumeDeployment(_OnDeployment):
    type: Literal["resume-deployment"]


class _OnWorkPool(_Targeted):
    target = "work_pool"
    work_pool: StrictStr | None = None

    @field_validator("work_pool")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return None if value is None else _name(value, NameKind.WORK_POOL)


class PauseWorkPool(_OnWorkPool):
    type: Literal["pause-work-pool"]


class ResumeWorkPool(_OnWorkPool):
    type: Literal["resume-work-pool"]


class _OnWorkQueue(_Targeted):
    target = "work_queue"
    work_queue: StrictStr | None = None

    @field_validator("work_queue")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return (
            None if value is None else _two_part(value, "work_queue", NameKind.WORK_POOL, NameKind.WORK_QUEUE)
        )


class PauseWorkQueue(_OnWorkQueue):
    type: Literal["pause-work-queue"]


class ResumeWorkQueue(_OnWorkQueue):
    type: Literal["resume-work-queue"]


class _OnAutomation(_Targeted):
    target = "automation"
    automation: StrictStr | None = None

    @field_validator("automation")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return None if value is None else _name(value, NameKind.AUTOMATION)


class PauseAutomation(_OnAutomation):
    type: Literal["pause-automation"]


class ResumeAutomation(_OnAutomation):
    type: Literal["resume-automation"]


class _WithBlock(_RawIds):
    block: StrictStr | None = None  # required, but a raw block_document_id instead is the one problem

    @model_validator(mode="after")
    def _block_required(self) -> _WithBlock:
        if self.block is None:
            raise ValueError("block is required: write the block's address, block: TYPE/NAME")
        return self

    @field_validator("block")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        block_type, sep, name = value.partition("/")
        if not sep or not block_type or not name:
            raise ValueError(f"block is written TYPE/NAME (such as slack-webhook/ops), not {value!r}")
        if problem(block_type, NameKind.BLOCK) is not None:
            raise ValueError(
                f"block type {block_type!r} may only contain lowercase letters, digits and dashes"
            )
        _name(name, NameKind.BLOCK)
        return value


class SendNotification(_WithBlock):
    type: Literal["send-notification"]
    subject: StrictStr = NOTIFICATION_SUBJECT
    body: StrictStr


class CallWebhook(_WithBlock):
    type: Literal["call-webhook"]
    payload: StrictStr | dict[str, Any] = ""

    @field_validator("block")
    @classmethod
    def _webhook(cls, value: str | None) -> str | None:
        if value is not None and value.partition("/")[0] != WEBHOOK_BLOCK_TYPE:
            raise ValueError(f"call-webhook calls a {WEBHOOK_BLOCK_TYPE} block (webhook/NAME), not {value!r}")
        return value


class ChangeFlowRunState(_Model):
    type: Literal["change-flow-run-state"]
    state: Literal[STATE_TYPES]  # type: ignore[valid-type]
    name: StrictStr | None = None
    message: StrictStr | None = None
    force: StrictBool = False


class _Plain(_Model):
    """An action with nothing but its type: it acts on the flow run of the triggering event."""


class CancelFlowRun(_Plain):
    type: Literal["cancel-flow-run"]


class SuspendFlowRun(_Plain):
    type: Literal["suspend-flow-run"]


class ResumeFlowRun(_Plain):
    type: Literal["resume-flow-run"]


class DeleteFlowRun(_Plain):
    type: Literal["delete-flow-run"]


class DoNothing(_Plain):
    type: Literal["do-nothing"]


ACTION_MODELS: dict[str, type[_Model]] = {
    "run-deployment": RunDeployment,
    "pause-deployment": PauseDeployment,
    "resume-deployment": ResumeDeployment,
    "pause-work-pool": PauseWorkPool,
    "resume-work-pool": ResumeWorkPool,
    "pause-work-queue": PauseWorkQueue,
    "resume-work-queue": ResumeWorkQueue,
    "pause-automation": PauseAutomation,
    "resume-automation": ResumeAutomation,
    "send-notification": SendNotification,
    "call-webhook": CallWebhook,
    "change-flow-run-state": ChangeFlowRunState,
    "cancel-flow-run": CancelFlowRun,
    "suspend-flow-run": SuspendFlowRun,
    "resume-flow-run": ResumeFlowRun,
    "delete-flow-run": DeleteFlowRun,
    "do-nothing": DoNothing,
}
"""Every action type Prefect's server accepts (``ServerActionTypes``), by its ``type``."""


class _UnknownAction(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Any = None

    @field_validator("type")
    @classmethod
    def _refuse(cls, value: Any) -> Any:
        raise ValueError(f"unknown action type {value!r} (known: {', '.join(sorted(ACTION_MODELS))})")

    @model_validator(mode="before")
    @classmethod
    def _needs_type(cls, value: Any) -> Any:
        if isinstance(value, dict) and "type" not in value:
            raise ValueError(f"an action needs a type: {', '.join(sorted(ACTION_MODELS))}")
        return value


def _action_tag(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    kind = value.get("type")
    model = ACTION_MODELS.get(kind) if isinstance(kind, str) else None
    return model.__name__ if model is not None else "Unknown"


Action = Annotated[
    Annotated[RunDeployment, Tag("RunDeployment")]
    | Annotated[PauseDeployment, Tag("PauseDeployment")]
    | Annotated[ResumeDeployment, Tag("ResumeDeployment")]
    | Annotated[PauseWorkPool, Tag("PauseWorkPool")]
    | Annotated[ResumeWorkPool, Tag("ResumeWorkPool")]
    | Annotated[PauseWorkQueue, Tag("PauseWorkQueue")]
    | Annotated[ResumeWorkQueue, Tag("ResumeWorkQueue")]
    | Annotated[PauseAutomation, Tag("PauseAutomation")]
    | Annotated[ResumeAutomation, Tag("ResumeAutomation")]
    | Annotated[SendNotification, Tag("SendNotification")]
    | Annotated[CallWebhook, Tag("CallWebhook")]
    | Annotated[ChangeFlowRunState, Tag("ChangeFlowRunState")]
    | Annotated[CancelFlowRun, Tag("CancelFlowRun")]
    | Annotated[SuspendFlowRun, Tag("SuspendFlowRun")]
    | Annotated[ResumeFlowRun, Tag("ResumeFlowRun")]
    | Annotated[DeleteFlowRun, Tag("DeleteFlowRun")]
    | Annotated[DoNothing, Tag("DoNothing")]
    | Annotated[_UnknownAction, Tag("Unknown")],
    Discriminator(
        _action_tag,
        custom_error_type="action_shape",
        custom_error_message="an action is a mapping with a type, such as run-deployment",
    ),
]

# -- the automation ---------------------------------------------------------------------------------


class Automation(_Model):
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
        return _name(value, NameKind.AUTOMATION)

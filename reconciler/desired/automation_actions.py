"""The actions of an ``automations:`` item, as Prefect's server accepts them (``ServerActionTypes``
of ``prefect.server.events.actions``, 3.9.1), with one difference: what an action acts on is named by
its address in the file (``deployment: etl/daily``, ``work_pool: ecs``, ``work_queue: ecs/high``,
``block: slack-webhook/ops``, ``automation: x``), never by id. Ids differ between servers and say
nothing in review, so a raw ``*_id`` key is refused with the address to write instead.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    StrictBool,
    StrictStr,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from reconciler.desired.automation_triggers import Seconds, Strict
from reconciler.desired.names import NameKind, problem

NOTIFICATION_SUBJECT = "Prefect automated notification"  # SendNotification.subject's default
WEBHOOK_BLOCK_TYPE = "webhook"  # CallWebhook calls only a Webhook block (checked when it fires)
STATE_TYPES = ("SCHEDULED", "PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "CRASHED", "PAUSED", "CANCELLING")  # fmt: skip


def name_part(value: str, kind: NameKind) -> str:
    """``value`` if it is a valid name of ``kind`` (as a reference: Prefect's rules for naming a
    new object do not apply), else ValueError."""
    reason = problem(value, kind, declared=False)
    if reason is not None:
        raise ValueError(reason)
    if not value.strip():
        raise ValueError(f"{kind.value} may not be empty")
    return value


def two_part(value: str, what: str, first: NameKind, second: NameKind) -> str:
    """``value`` if it is ``FIRST/SECOND``, each part a valid name of its kind, else ValueError."""
    left, sep, right = value.partition("/")
    if not sep or not left or not right:
        raise ValueError(f"{what} is written {first.value.split()[0].upper()}/NAME, not {value!r}")
    name_part(left, first)
    name_part(right, second)
    return value


class _RawIds(Strict):
    """Refuses the id keys of Prefect's JSON, each with the address to write instead."""

    deployment_id: Any = None
    work_pool_id: Any = None
    work_queue_id: Any = None
    automation_id: Any = None
    block_document_id: Any = None

    @field_validator("deployment_id", "work_pool_id", "work_queue_id", "automation_id", "block_document_id")
    @classmethod
    def _refuse(cls, value: Any, info: ValidationInfo) -> Any:
        key = {
            "deployment_id": "deployment: FLOW/NAME",
            "work_pool_id": "work_pool: NAME",
            "work_queue_id": "work_queue: POOL/NAME",
            "automation_id": "automation: NAME",
            "block_document_id": "block: TYPE/NAME",
        }[info.field_name]
        raise ValueError(f"ids differ between servers and say nothing in review: write the address, {key}")


class Targeted(_RawIds):
    """An action on one object: the one named (source ``selected``) or the event's (``inferred``)."""

    source: Literal["selected", "inferred"] = "selected"
    target: ClassVar[str]  # the field that names the object

    @model_validator(mode="after")
    def _target_matches_source(self) -> Targeted:
        named = getattr(self, self.target) is not None
        if self.source == "selected" and not named:
            raise ValueError(f"{self.target} is required (or source: inferred, to act on the event's own)")
        if self.source == "inferred" and named:
            raise ValueError(f"{self.target} is not allowed with source: inferred")
        return self


class _OnDeployment(Targeted):
    target = "deployment"
    deployment: StrictStr | None = None

    @field_validator("deployment")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return None if value is None else two_part(value, "deployment", NameKind.FLOW, NameKind.DEPLOYMENT)


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


class _OnWorkPool(Targeted):
    target = "work_pool"
    work_pool: StrictStr | None = None

    @field_validator("work_pool")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return None if value is None else name_part(value, NameKind.WORK_POOL)


class PauseWorkPool(_OnWorkPool):
    type: Literal["pause-work-pool"]


class ResumeWorkPool(_OnWorkPool):
    type: Literal["resume-work-pool"]


class _OnWorkQueue(Targeted):
    target = "work_queue"
    work_queue: StrictStr | None = None

    @field_validator("work_queue")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return (
            None if value is None else two_part(value, "work_queue", NameKind.WORK_POOL, NameKind.WORK_QUEUE)
        )


class PauseWorkQueue(_OnWorkQueue):
    type: Literal["pause-work-queue"]


class ResumeWorkQueue(_OnWorkQueue):
    type: Literal["resume-work-queue"]


class _OnAutomation(Targeted):
    target = "automation"
    automation: StrictStr | None = None

    @field_validator("automation")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        return None if value is None else name_part(value, NameKind.AUTOMATION)


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
        name_part(name, NameKind.BLOCK)
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


class ChangeFlowRunState(Strict):
    type: Literal["change-flow-run-state"]
    state: Literal[STATE_TYPES]  # type: ignore[valid-type]
    name: StrictStr | None = None
    message: StrictStr | None = None
    force: StrictBool = False


class _Plain(Strict):
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


ACTION_MODELS: dict[str, type[Strict]] = {
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
    model_config = ConfigDict(extra="allow", defer_build=True)
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


TAGS = frozenset({*(model.__name__ for model in ACTION_MODELS.values()), "Unknown"})
"""The union tags pydantic puts in error locations: not places in the file."""


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

"""The triggers of an ``automations:`` item, as Prefect's server accepts them.

Event, compound and sequence triggers follow ``prefect.server.events.schemas.automations`` (3.9.1);
the metric trigger is Prefect Cloud's (its client model, ``prefect.events.schemas.automations``), as
a self-hosted server has none. Durations are read as Prefect reads them and kept in seconds. Union
members are tagged with capitalised names, which error locations leave out.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictInt,
    StrictStr,
    Tag,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

_DURATION: TypeAdapter[timedelta] = TypeAdapter(timedelta)
PROACTIVE_MINIMUM_WITHIN = 10.0  # seconds: EventTrigger.enforce_minimum_within_for_proactive_triggers
METRIC_MINIMUM_WINDOW = 300.0  # seconds: MetricTriggerQuery.enforce_minimum_range


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


class Strict(BaseModel):
    """Our models refuse unknown keys (Prefect ignores some): a misspelt ``whitin`` is not lost."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


# -- triggers ---------------------------------------------------------------------------------------


class EventTrigger(Strict):
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


class MetricQuery(Strict):
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


class MetricTrigger(Strict):
    """Fires when a metric of the matching resources breaches its threshold (Prefect Cloud only)."""

    type: Literal["metric"] = "metric"
    match: Labels = Field(default_factory=dict)
    match_related: Labels | list[Labels] = Field(default_factory=dict)
    posture: Literal["Metric"] = "Metric"
    metric: MetricQuery


class CompoundTrigger(Strict):
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


class SequenceTrigger(Strict):
    """Fires when its triggers fired in their order within a period."""

    type: Literal["sequence"] = "sequence"
    triggers: list[Trigger] = Field(min_length=1)
    within: Seconds | None = None


class _UnknownTrigger(BaseModel):
    """Stands for a trigger whose ``type`` names none of the kinds: the error lands on ``type``."""

    model_config = ConfigDict(extra="allow", defer_build=True)
    type: Any

    @field_validator("type")
    @classmethod
    def _refuse(cls, value: Any) -> Any:
        raise ValueError(f"unknown trigger type {value!r} (known: event, metric, compound, sequence)")


_TRIGGER_TAGS = {"event": "Event", "metric": "Metric", "compound": "Compound", "sequence": "Sequence"}
TAGS = frozenset({*_TRIGGER_TAGS.values(), "Unknown"})
"""The union tags pydantic puts in error locations: not places in the file."""


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

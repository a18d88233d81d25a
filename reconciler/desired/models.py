"""Pydantic models of ``prefect.yaml``: typed access plus the checks a JSON Schema cannot express.

The JSON Schema in ``schemas/prefect.schema.json`` checks shape first (fast, editor-friendly); these
models then parse each item and check meaning: exactly one of cron/interval/rrule, a cron that
croniter accepts, a real time zone, an rrule dateutil can read. Prefect's own sections ignore unknown
keys (``extra="allow"``, as Prefect does); our sections forbid them.
"""

from __future__ import annotations

import functools
import zoneinfo
from datetime import datetime, timedelta
from typing import Any, Literal

from croniter import croniter
from dateutil.rrule import rrulestr
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

from reconciler.desired.names import NameKind, problem

_DURATION = TypeAdapter(timedelta)


def _checked_name(value: str | None, kind: NameKind, *, declared: bool = True) -> str | None:
    """Prefect's rules for names plus ours (see ``names``); None passes (optional names)."""
    return None if value is None else _name(value, kind, declared=declared)


def _name(value: str, kind: NameKind, *, declared: bool = True) -> str:
    """A required name, checked against Prefect's rules and ours."""
    reason = problem(value, kind, declared=declared)
    if reason is not None:
        raise ValueError(reason)
    return value


def _is_empty_stanza(value: Any) -> bool:
    """``{}``: what ``prefect init`` writes for "no schedule" (Prefect's ``Dict[None, None]`` form)."""
    return isinstance(value, dict) and not value


@functools.lru_cache(maxsize=4096)
def _valid_cron(expression: str) -> bool:
    """croniter's check, cached: a file with 10,000 deployments has only a few distinct crons."""
    return bool(croniter.is_valid(expression))


def _seconds(value: float | str) -> float | None:
    try:
        return _DURATION.validate_python(value).total_seconds()
    except ValueError:
        return None


class _Ours(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Prefects(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)


class Schedule(_Ours):
    """One item of ``schedules`` (Prefect's RawScheduleConfig, which also forbids unknown keys)."""

    cron: str | None = None
    interval: float | str | None = None
    rrule: str | None = None
    timezone: str | None = None
    anchor_date: datetime | str | None = None
    day_or: bool | None = None
    active: bool | str = True
    parameters: dict[str, Any] = Field(default_factory=dict)
    slug: str | None = None
    replaces: str | None = None
    max_active_runs: int | None = None
    catchup: bool | None = None

    @field_validator("slug", "replaces")
    @classmethod
    def _slug(cls, value: str | None) -> str | None:
        return _checked_name(value, NameKind.SLUG)

    @field_validator("active", mode="before")
    @classmethod
    def _active_default(cls, value: Any) -> Any:
        """``active: null`` (Prefect accepts it) leaves the default: active."""
        return True if value is None else value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None and "{{" not in value and not _valid_cron(value):
            raise ValueError(f"invalid cron expression {value!r}")
        return value

    @field_validator("rrule")
    @classmethod
    def _rrule(cls, value: str | None) -> str | None:
        if value is not None and "{{" not in value:
            try:
                rrulestr(value)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"invalid rrule {value!r}: {exc}") from None
        return value

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: float | str | None) -> float | str | None:
        if value is not None and not (isinstance(value, str) and "{{" in value):
            seconds = _seconds(value)
            if seconds is None or seconds <= 0:
                raise ValueError(f"interval must be a positive duration, got {value!r}")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is not None and "{{" not in value:
            try:
                zoneinfo.ZoneInfo(value)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> Schedule:
        given = [k for k in ("cron", "interval", "rrule") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "a schedule needs exactly one of cron, interval or rrule"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self

    @property
    def kind(self) -> str:
        return "cron" if self.cron is not None else "interval" if self.interval is not None else "rrule"

    @property
    def interval_seconds(self) -> float | None:
        """Seconds, from a number, an ISO-8601 duration (``PT10M``) or ``HH:MM:SS``."""
        return None if self.interval is None else _seconds(self.interval)


class WorkPoolRef(_Prefects):
    name: str | None = None
    work_queue_name: str | None = None
    job_variables: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _pool_name(cls, value: str | None) -> str | None:
        return _checked_name(value, NameKind.WORK_POOL, declared=False)

    @field_validator("work_queue_name")
    @classmethod
    def _queue_name(cls, value: str | None) -> str | None:
        return _checked_name(value, NameKind.WORK_QUEUE)


class ConcurrencyOptions(_Prefects):
    limit: int = Field(ge=0)
    collision_strategy: Literal["ENQUEUE", "CANCEL_NEW"] = "ENQUEUE"

    @field_validator("collision_strategy", mode="before")
    @classmethod
    def _strategy_default(cls, value: Any) -> Any:
        """``collision_strategy: null`` (Prefect accepts it) is the server's default, ENQUEUE."""
        return "ENQUEUE" if value is None else value

    grace_period_seconds: int | None = Field(default=None, ge=60, le=86400)


class PushRule(_Ours):
    branches: list[str] | None = None
    paths: list[str] | None = None


class WatchRule(_Ours):
    paths: list[str]


class RunOn(_Ours):
    """One ``run_on`` rule: exactly one of ``push``, ``watch``, ``apply``."""

    push: PushRule | None = None
    watch: WatchRule | None = None
    apply: Literal["changed"] | None = None

    @model_validator(mode="after")
    def _one_rule(self) -> RunOn:
        given = [k for k in ("push", "watch", "apply") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a run_on rule has exactly one of push, watch or apply")
        return self


class Deployment(_Prefects):
    """One item of ``deployments`` (Prefect's DeploymentConfig, plus our ``run_on``).

    ``name`` and ``entrypoint`` may be empty, as in the entry ``prefect init`` writes: the loader
    skips such a placeholder with a warning, as ``prefect deploy --all`` skips unnamed entries.
    """

    name: str | None = None
    entrypoint: str | None = None
    flow_name: str | None = None
    version: str | int | float | None = None
    version_type: str | None = None
    description: str | None = None
    tags: list[str] | str = Field(default_factory=list)
    parameters: dict[str, Any] = Field(default_factory=dict)
    enforce_parameter_schema: bool = True
    schedule: Schedule | None = None
    schedules: list[Schedule] | None = None
    paused: bool | None = None
    concurrency_limit: int | ConcurrencyOptions | None = None
    work_pool: WorkPoolRef | None = None
    build: list[dict[str, Any]] | dict[str, Any] | None = None
    push: list[dict[str, Any]] | dict[str, Any] | None = None
    pull: list[dict[str, Any]] | dict[str, Any] | None = None
    triggers: list[dict[str, Any]] | None = None
    run_on: list[RunOn] = Field(default_factory=list)
    # ours: a global concurrency limit (``concurrency_limits:`` or existing) the runs share, by name;
    # Prefect's deployment field is ``global_concurrency_limit_id``, which a file cannot know
    global_concurrency_limit: str | None = None

    @field_validator("name")
    @classmethod
    def _name_chars(cls, value: str | None) -> str | None:
        return _checked_name(value, NameKind.DEPLOYMENT)

    @field_validator("global_concurrency_limit")
    @classmethod
    def _limit_name(cls, value: str | None) -> str | None:
        return _checked_name(value, NameKind.CONCURRENCY_LIMIT, declared=False)

    @field_validator("tags", mode="before")
    @classmethod
    def _no_tags(cls, value: Any) -> Any:
        """``tags: null`` (Prefect accepts it) is no tags."""
        return [] if value is None else value

    @field_validator("enforce_parameter_schema", mode="before")
    @classmethod
    def _enforce_default(cls, value: Any) -> Any:
        """``enforce_parameter_schema: null`` (Prefect accepts it) is Prefect's default: enforced."""
        return True if value is None else value

    @field_validator("concurrency_limit", mode="before")
    @classmethod
    def _no_limit(cls, value: Any) -> Any:
        """``{limit: null}`` (Prefect accepts it) sets no limit."""
        return None if isinstance(value, dict) and value.get("limit") is None else value

    @field_validator("schedule", mode="before")
    @classmethod
    def _empty_schedule(cls, value: Any) -> Any:
        """``schedule: {}`` (what ``prefect init`` writes) means no schedule, as in Prefect."""
        return None if _is_empty_stanza(value) else value

    @field_validator("schedules", mode="before")
    @classmethod
    def _empty_schedule_items(cls, value: Any) -> Any:
        """An empty item of ``schedules`` schedules nothing; it is dropped rather than refused."""
        if isinstance(value, list):
            return [item for item in value if not _is_empty_stanza(item)]
        return value

    @model_validator(mode="after")
    def _one_schedule_form(self) -> Deployment:
        if self.schedule is not None and self.schedules is not None:
            raise ValueError("give either schedule or schedules, not both")
        if isinstance(self.concurrency_limit, int) and self.concurrency_limit < 0:
            raise ValueError("concurrency_limit must be >= 0")
        if self.global_concurrency_limit is not None and self.concurrency_limit:
            # Prefect's own rule (DeploymentCreate): one or the other
            raise ValueError("give either concurrency_limit or global_concurrency_limit, not both")
        return self

    def all_schedules(self) -> list[Schedule]:
        if self.schedules is not None:
            return list(self.schedules)
        return [self.schedule] if self.schedule is not None else []


class WorkPool(_Ours):
    """One item of our ``work_pools`` section."""

    name: str
    type: str
    description: str | None = None
    concurrency_limit: int | None = Field(default=None, ge=0)
    paused: bool = False
    job_variables: dict[str, Any] = Field(default_factory=dict)
    base_job_template: dict[str, Any] | None = None

    @field_validator("name")
    @classmethod
    def _pool_name(cls, value: str) -> str:
        return _name(value, NameKind.WORK_POOL)

    @field_validator("base_job_template")
    @classmethod
    def _template_shape(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value and not {"job_configuration", "variables"} <= set(value):
            raise ValueError("base_job_template needs both job_configuration and variables (or be {})")
        return value


class Block(_Ours):
    """One item of our ``blocks`` section."""

    type: str
    name: str
    data: dict[str, Any]

    @field_validator("name")
    @classmethod
    def _block_name(cls, value: str) -> str:
        return _name(value, NameKind.BLOCK)


class WorkQueue(_Ours):
    """One item of our ``work_queues`` section (Prefect's WorkQueueCreate, under its pool).

    ``priority`` left out is not managed: Prefect gives a new queue the next free number and the
    plan does not fight it. Lower numbers run first, as in Prefect."""

    pool: str
    name: str
    description: str | None = None  # unset: Prefect's own (see check_workspace.DEFAULT_DESCRIPTIONS)
    priority: int | None = Field(default=None, ge=1)
    concurrency_limit: int | None = Field(default=None, ge=0)
    paused: bool = False

    @field_validator("pool")
    @classmethod
    def _pool_name(cls, value: str) -> str:
        return _name(value, NameKind.WORK_POOL, declared=False)

    @field_validator("name")
    @classmethod
    def _queue_name(cls, value: str) -> str:
        return _name(value, NameKind.WORK_QUEUE)


class Variable(_Ours):
    """One item of our ``variables`` section: any JSON value, readable by anyone with API access."""

    name: str = Field(max_length=255)
    value: Any
    tags: list[str] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _variable_name(cls, value: str) -> str:
        return _name(value, NameKind.VARIABLE)


class ConcurrencyLimit(_Ours):
    """One item of our ``concurrency_limits`` section (Prefect's global concurrency limit, v2 API)."""

    name: str
    limit: int = Field(ge=0)
    active: bool = True
    slot_decay_per_second: float = Field(default=0.0, ge=0)

    @field_validator("name")
    @classmethod
    def _limit_name(cls, value: str) -> str:
        return _name(value, NameKind.CONCURRENCY_LIMIT)


class ProjectFile(_Prefects):
    """The top level of the file. Sections are validated item by item by the loader."""

    name: str | None = None
    prefect_version: str | None = Field(default=None, alias="prefect-version")
    build: Any = None
    push: Any = None
    pull: Any = None
    definitions: Any = None

    @field_validator("name")
    @classmethod
    def _project_name(cls, value: str | None) -> str | None:
        return _checked_name(value, NameKind.PROJECT)

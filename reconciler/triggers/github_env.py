"""What a GitHub runner gives an Action's step and takes back: inputs, the event, outputs, summary.

``action.yml`` passes the inputs as ``INPUT_*`` variables (a composite action gets none by itself);
the runner sets ``GITHUB_EVENT_NAME``, ``GITHUB_EVENT_PATH`` (the webhook payload), ``GITHUB_REF``,
``GITHUB_REPOSITORY``, ``GITHUB_API_URL``... and reads ``GITHUB_OUTPUT`` (``name=value`` lines, or the
``name<<DELIMITER`` form for multi-line values) and ``GITHUB_STEP_SUMMARY`` (Markdown) after the step.
Bad inputs and a missing event are usage errors: one line, exit 1.
"""

from __future__ import annotations

import json
import posixpath
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import orjson

from reconciler import plan as planning
from reconciler.errors import UsageError

PULL_EVENTS = frozenset({"pull_request", "pull_request_target"})


class Command(StrEnum):
    PLAN = "plan"
    APPLY = "apply"
    AUTO = "auto"  # plan on pull requests, apply + push triggers on a push to the default branch


class Mode(StrEnum):
    PLAN = "plan"
    APPLY = "apply"
    SKIP = "skip"


@dataclass(frozen=True)
class Inputs:
    """The action's inputs, as ``action.yml`` passes them (strings in, typed here)."""

    command: Command = Command.AUTO
    working_directory: str = "."
    prune: bool = False
    comment: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Inputs:
        raw = (environ.get("INPUT_COMMAND") or "auto").strip().lower()
        try:
            command = Command(raw)
        except ValueError:
            raise UsageError(f"input command must be plan, apply or auto, not {raw!r}") from None
        return cls(
            command=command,
            working_directory=posixpath.normpath(environ.get("INPUT_WORKING_DIRECTORY") or "."),
            prune=_flag(environ, "INPUT_PRUNE", False),
            comment=_flag(environ, "INPUT_COMMENT", True),
        )


def _flag(environ: Mapping[str, str], name: str, default: bool) -> bool:
    value = (environ.get(name) or "").strip().lower()
    if not value:
        return default
    if value in ("true", "yes", "1", "on"):
        return True
    if value in ("false", "no", "0", "off"):
        return False
    raise UsageError(
        f"input {name.removeprefix('INPUT_').lower().replace('_', '-')} must be true or false, not {value!r}"
    )


@dataclass(frozen=True)
class Event:
    """The workflow run's event, read from the runner's environment."""

    name: str
    payload: Mapping[str, Any]
    repository: str
    api_url: str
    run_url: str
    ref: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Event:
        name = environ.get("GITHUB_EVENT_NAME", "")
        path = environ.get("GITHUB_EVENT_PATH")
        if not name or not path:
            raise UsageError(
                "not running in GitHub Actions: GITHUB_EVENT_NAME and GITHUB_EVENT_PATH are not set"
            )
        try:
            payload = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot read the event payload {path}: {exc}") from None
        repository = environ.get("GITHUB_REPOSITORY") or (payload.get("repository") or {}).get(
            "full_name", ""
        )
        server = environ.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        run_id = environ.get("GITHUB_RUN_ID")
        return cls(
            name=name,
            payload=payload,
            repository=repository,
            api_url=environ.get("GITHUB_API_URL", "https://api.github.com"),
            run_url=f"{server}/{repository}/actions/runs/{run_id}" if run_id else "",
            ref=environ.get("GITHUB_REF") or str(payload.get("ref") or ""),
        )

    @property
    def pull(self) -> Mapping[str, Any]:
        return self.payload.get("pull_request") or {}

    @property
    def pull_number(self) -> int | None:
        number = self.pull.get("number") or self.payload.get("number")
        return int(number) if number else None

    @property
    def default_branch(self) -> str | None:
        return (self.payload.get("repository") or {}).get("default_branch")

    @property
    def branch(self) -> str | None:
        """The branch pushed to (push events), or the branch a pull request merges into."""
        if self.name in PULL_EVENTS:
            return (self.pull.get("base") or {}).get("ref")
        return self.ref.removeprefix("refs/heads/") if self.ref.startswith("refs/heads/") else None


def decide(inputs: Inputs, event: Event) -> tuple[Mode, str]:
    """Plan or apply, and why (printed, so a surprising choice explains itself)."""
    if event.name in PULL_EVENTS:
        if inputs.command is Command.APPLY:
            raise UsageError("command apply on a pull request would apply unmerged changes; use plan or auto")
        return Mode.PLAN, f"{event.name}: plan and comment"
    if event.name == "push" and event.payload.get("deleted"):
        return Mode.SKIP, "the push deleted the branch"
    if inputs.command is not Command.AUTO:
        return Mode(inputs.command.value), f"command {inputs.command.value}"
    if event.name == "push" and event.branch and event.branch == event.default_branch:
        return Mode.APPLY, f"push to the default branch {event.branch}"
    return Mode.PLAN, f"{event.name} to {event.ref or 'a ref'} that is not the default branch: plan only"


def write_plan_json(
    result: planning.Plan, environ: Mapping[str, str], project_dir: Path, working_directory: str
) -> Path:
    """The plan JSON where an artifact upload can pick it up (``RUNNER_TEMP``, else ``.reconcile``)."""
    runner_temp = environ.get("RUNNER_TEMP")
    base = Path(runner_temp) / "prefect-reconciler" if runner_temp else Path(project_dir) / ".reconcile"
    base.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^A-Za-z0-9]+", "-", working_directory).strip("-") or "root"
    path = (base / f"plan-{slug}.json").resolve()
    path.write_bytes(orjson.dumps(planning.encode_plan(result), option=orjson.OPT_INDENT_2) + b"\n")
    return path


def write_outputs(path: str | None, values: Mapping[str, str]) -> None:
    """Append step outputs to ``GITHUB_OUTPUT`` (multi-line values in the heredoc form)."""
    if not path:
        return
    with open(path, "a", encoding="utf-8") as f:
        for name, value in values.items():
            if "\n" in value:
                delimiter = f"ghadelimiter_{uuid.uuid4()}"
                f.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")
            else:
                f.write(f"{name}={value}\n")


def append_summary(path: str | None, markdown: str) -> None:
    """Append to the job summary (``GITHUB_STEP_SUMMARY``), shown on the workflow run's page."""
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(markdown)

"""What a GitHub runner gives an Action's step and takes back: inputs, the event, outputs, summary.

``action.yml`` passes the inputs as ``INPUT_*`` variables (a composite action gets none by itself);
the runner sets ``GITHUB_EVENT_NAME``, ``GITHUB_EVENT_PATH`` (the webhook payload), ``GITHUB_REF``,
``GITHUB_REPOSITORY``, ``GITHUB_API_URL``... and reads ``GITHUB_OUTPUT`` (``name=value`` lines, or the
``name<<DELIMITER`` form for multi-line values) and ``GITHUB_STEP_SUMMARY`` (Markdown) after the step.
Bad inputs and a missing event are usage errors: one line, exit 1.

The state is never guessed. The ``state`` input (``INPUT_STATE``; ``RECONCILE_STATE`` when the entry
runs outside ``action.yml``) must be a state URL, or ``sqlite`` to opt in to a throwaway SQLite store
for a demo. Empty (a fork's pull request gets no secrets; a secret name is mistyped) is an error,
except on a pull request from a fork, where the plan is reported unavailable instead of failing.
"""

from __future__ import annotations

import json
import os
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
from reconciler.triggers.github_api import GitHubClient

PULL_EVENTS = frozenset({"pull_request", "pull_request_target"})
STATE_OPT_IN = "sqlite"  # `state: sqlite`: a throwaway SQLite file under the project, for demos
FORK_UNAVAILABLE = "plan unavailable: no state credentials on a fork"
NO_STATE = (
    "input state is empty: no state is configured, and the Action never falls back to a throwaway "
    "store (a plan would show everything as new and an apply would write nowhere that lasts). "
    "Pass the state URL from a secret (state: ${{ secrets.RECONCILE_STATE }}: is the secret set and "
    "spelled right, and does this job's environment hold it?), or state: sqlite for a demo"
)


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
    state: str | None = None  # a state URL, STATE_OPT_IN, or None when nothing is configured
    token_is_default: bool | None = None  # github-token is the workflow's GITHUB_TOKEN (None: unknown)
    preflight: bool = False  # pull requests: check the push pools against their clouds (read-only)

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
            state=_state(environ),
            token_is_default=_flag(environ, "INPUT_GITHUB_TOKEN_IS_DEFAULT", None),
            preflight=bool(_flag(environ, "INPUT_PREFLIGHT", False)),
        )

    def state_url(self, project_dir: Path) -> str | None:
        """The URL to open: the input's, the demo SQLite file for ``sqlite``, None when unset."""
        if self.state == STATE_OPT_IN:
            return f"sqlite:///{(Path(project_dir) / '.reconcile' / 'state.db').resolve()}"
        return self.state


def _state(environ: Mapping[str, str]) -> str | None:
    raw = environ["INPUT_STATE"] if "INPUT_STATE" in environ else environ.get("RECONCILE_STATE", "")
    value = raw.strip()
    if not value:
        return None
    if value.lower() == STATE_OPT_IN:
        return STATE_OPT_IN
    if "://" not in value:  # never echo it: a mistyped secret is still a secret
        raise UsageError(
            "input state is neither a state URL (postgresql+psycopg://..., prefect+https://HOST/api, "
            "sqlite:///PATH) nor sqlite; its value is not shown"
        )
    return value


def _flag(environ: Mapping[str, str], name: str, default: Any) -> Any:
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
        missing = [n for n, v in (("GITHUB_EVENT_NAME", name), ("GITHUB_EVENT_PATH", path)) if not v]
        if missing:
            verb = "is" if len(missing) == 1 else "are"
            raise UsageError(f"not running in GitHub Actions: {' and '.join(missing)} {verb} not set")
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
    def from_fork(self) -> bool:
        """A pull request whose head lives in another repository (GitHub gives it no secrets)."""
        if self.name not in PULL_EVENTS:
            return False
        head = (self.pull.get("head") or {}).get("repo") or {}
        base = (self.pull.get("base") or {}).get("repo") or {}
        if not head:
            return True  # the head repository was deleted: certainly not this one
        if head.get("id") and base.get("id"):
            return bool(head["id"] != base["id"])
        return str(head.get("full_name") or "").lower() != str(base.get("full_name") or "").lower()

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
    """Plan or apply, and why (printed, so a surprising choice explains itself).

    No state configured: a fork's pull request is skipped as :data:`FORK_UNAVAILABLE`; anything
    else is a usage error (:data:`NO_STATE`), never a plan against a throwaway store.
    """
    if inputs.state is None:
        if event.from_fork:
            return Mode.SKIP, FORK_UNAVAILABLE
        raise UsageError(NO_STATE)
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


def github_client(inputs: Inputs, event: Event, environ: Mapping[str, str]) -> GitHubClient | None:
    """A client for the Action's ``github-token`` (None without one); it knows whose token it is."""
    token = environ.get("GITHUB_TOKEN", "")
    if not token:
        return None
    return GitHubClient(token=token, api_url=event.api_url, actions_token=inputs.token_is_default)


def write_plan_json(
    result: planning.Plan, environ: Mapping[str, str], project_dir: Path, working_directory: str
) -> Path:
    """The plan JSON where an artifact upload can pick it up (``RUNNER_TEMP``, else ``.reconcile``)."""
    runner_temp = environ.get("RUNNER_TEMP")
    base = Path(runner_temp) / "prefect-reconciler" if runner_temp else Path(project_dir) / ".reconcile"
    base.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^A-Za-z0-9]+", "-", working_directory).strip("-") or "root"
    path = (base / f"plan-{slug}.json").resolve()
    data = orjson.dumps(planning.encode_plan(result), option=orjson.OPT_INDENT_2) + b"\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # the runner's other users: no
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)  # an older file keeps its mode through O_CREAT
        f.write(data)
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

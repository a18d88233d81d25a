"""``python -m reconciler.runtime``: run one deployment's entrypoint inside the job's infrastructure.

The same tiny program runs in a local subprocess (``process`` pools) and in a stock Python image with
this package installed (ECS, Cloud Run, ACI). It reads the run from environment variables, runs the
deployment's pull steps, imports the entrypoint by file path and calls it with the parameters. A
Prefect ``@flow`` runs through Prefect's engine when Prefect is installed; a plain function just runs.
It imports nothing else from this package (but :mod:`reconciler.runtime_api`, where it is
installed), so it starts fast and works anywhere; it needs Python 3.8+ and the standard library only,
because push pools ship it *inside the job* (``reconciler.launch.bootstrap``) to images that have
nothing of ours installed.

Environment: RECONCILE_RUN_ID, RECONCILE_DEPLOYMENT, RECONCILE_ENTRYPOINT (``path/file.py:func`` or
``pkg.module.func``), RECONCILE_PARAMETERS (a JSON object), RECONCILE_PULL_STEPS (JSON list, optional),
RECONCILE_RESULT_FILE (optional: where to write ``{"exit_code", "started_at", "ended_at", "message"}``).
Without ``PREFECT_API_URL``, a run whose code uses Prefect gets Prefect's API server for itself
(``runtime_api.PrivateApi``: quiet, its own database, no migration), because Prefect 3 runs flows
and tasks only against an API; where that module is absent, Prefect starts its temporary server,
kept quiet and on a database of its own by ``ephemeral_prefect_defaults``.

Exit code: 0 when the function returned, 1 when it raised, 2 when the run could not be set up.

``python -m reconciler.runtime --exec CMD...`` supervises another command instead (a custom
``command`` job variable, or Prefect's ``prefect flow-run execute``): it forwards termination signals
and writes the same result file with the command's exit code, so a local run is always followable.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import inspect
import json
import logging
import os
import signal
import subprocess
import sys
import traceback
from collections.abc import Callable, Mapping, Set
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, cast

_UTC = timezone.utc  # noqa: UP017 - datetime.UTC is Python 3.11+; images may have an older Python


def load_entrypoint(entrypoint: str) -> Callable[..., Any]:
    """Import an entrypoint as Prefect's ``import_object`` does: ``path/file.py:func`` (relative to the
    working directory), ``pkg.module:func`` or ``pkg.module.func``; ``:Class.method`` is followed too."""
    if ".py:" in entrypoint:
        file, _, object_path = entrypoint.rpartition(":")
        path = Path(file).resolve()
        sys.path.insert(0, str(path.parent))
        spec = importlib.util.spec_from_file_location(f"__reconcile_flow__.{path.stem}", path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {file}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    else:
        separator = ":" if ":" in entrypoint else "."
        module_name, _, object_path = entrypoint.rpartition(separator)
        sys.path.insert(0, os.getcwd())
        module = importlib.import_module(module_name)
    target: Any = module
    for part in object_path.split("."):
        target = getattr(target, part)
    return cast(Callable[..., Any], target)


def run_pull_steps(steps: list[dict[str, Any]], before_prefect: Callable[[], None] | None = None) -> None:
    """Prefect's pull steps: ``set_working_directory`` natively, anything else through Prefect
    (``before_prefect`` first: a step may read blocks or variables from the API)."""
    for step in steps:
        (function, inputs), *_ = [(k, v) for k, v in step.items() if k not in ("id", "requires")]
        if function.endswith("set_working_directory"):
            os.chdir(os.path.expandvars((inputs or {})["directory"]))
            continue
        try:
            from prefect.deployments.steps.core import run_steps
        except ImportError:
            raise RuntimeError(f"pull step {function} needs Prefect installed in the job image") from None
        if before_prefect is not None:
            before_prefect()
        asyncio.run(run_steps([step]))


# Settings for a job that reports to no Prefect server. The API server the job then needs (its own,
# :class:`PrivateApi`, or Prefect's temporary one if the code imports Prefect only once it runs) gets
# a database of its own: the shared default (~/.prefect/prefect.db) makes concurrent runs race on its
# migrations ("duplicate column name") and writes ("database is locked"), and a run's flow-run history
# is kept by the reconciler's store anyway. ERROR keeps a failing server visible while its routine
# start-up lines stay out; telemetry off spares a failing network call; the flow's logs are in the
# run's own log, so sending them to a server that is thrown away after the run only costs time.
EPHEMERAL_SERVER_DEFAULTS = {
    "PREFECT_API_DATABASE_CONNECTION_URL": (
        "sqlite+aiosqlite:///file::memory:?cache=shared&uri=true&check_same_thread=false"
    ),
    "PREFECT_SERVER_LOGGING_LEVEL": "ERROR",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_TO_API_ENABLED": "false",
}
# What else counts as the user having chosen a setting: its other spellings (aliases Prefect accepts)
# and, for the database, any of its parts (driver, host, name, ...).
_USER_CHOSE = {
    "PREFECT_API_DATABASE_CONNECTION_URL": ("PREFECT_API_DATABASE_", "PREFECT_SERVER_DATABASE_"),
    "PREFECT_SERVER_LOGGING_LEVEL": ("PREFECT_SERVER_LOGGING_LEVEL", "PREFECT_LOGGING_SERVER_LEVEL"),
    "PREFECT_SERVER_ANALYTICS_ENABLED": ("PREFECT_SERVER_ANALYTICS_ENABLED",),
    "PREFECT_LOGGING_TO_API_ENABLED": ("PREFECT_LOGGING_TO_API_ENABLED",),
}


def reports_to_server(environ: Mapping[str, str], profile: Set[str]) -> bool:
    """Whether the job has a Prefect server: ``PREFECT_API_URL`` in its environment or its profile."""
    return bool(environ.get("PREFECT_API_URL")) or "PREFECT_API_URL" in profile


def ephemeral_prefect_defaults(environ: Mapping[str, str], profile: Set[str]) -> dict[str, str]:
    """The settings to add for a job without a Prefect server: none when the job reports to one,
    and never one the user set, in the environment or the active profile (``profile``: the names
    set there)."""
    if reports_to_server(environ, profile):
        return {}
    chosen = {*environ, *profile}
    return {
        name: value
        for name, value in EPHEMERAL_SERVER_DEFAULTS.items()
        if not any(n.startswith(_USER_CHOSE[name]) for n in chosen)
    }


def profile_setting_names(environ: Mapping[str, str]) -> set[str]:
    """Names of the settings the active Prefect profile sets (``prefect config set``), read from the
    profiles file without importing Prefect, whose settings are fixed at import; empty when there is
    none or it cannot be read (Python < 3.11 has no TOML reader)."""
    try:
        import tomllib
    except ImportError:
        return set()
    home = Path(environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    path = Path(environ.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").expanduser()
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    active = environ.get("PREFECT_PROFILE") or doc.get("active") or "ephemeral"
    settings = (doc.get("profiles") or {}).get(active) or {}
    return {str(name).upper() for name in settings} if isinstance(settings, dict) else set()


class _TemporaryServerNotice(logging.Filter):
    """Drops Prefect's "Starting/Stopping temporary server" lines: the same logger (``prefect``)
    carries the flow's own records, so its level cannot be raised without hiding them."""

    _SOURCE = os.path.join("prefect", "server", "api", "server.py")

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.pathname.endswith(self._SOURCE)


def quiet_temporary_server() -> None:
    """Keep the temporary server's notices out of the run's log (call after Prefect is imported)."""
    logging.getLogger("prefect").addFilter(_TemporaryServerNotice())


def private_api(server_settings: Mapping[str, str]) -> Any:
    """Prefect's API server for this run alone (``reconciler.runtime_api.PrivateApi``), where this
    package is installed; None in the runtime that travels alone in a push pool's job, which leaves
    the job to Prefect's own temporary server."""
    try:
        from reconciler.runtime_api import PrivateApi
    except ImportError:
        return None
    return PrivateApi(server_settings)


def call(function: Callable[..., Any], parameters: dict[str, Any]) -> Any:
    result = function(**parameters)
    if inspect.isawaitable(result):
        return asyncio.run(_await(result))
    return result


async def _await(awaitable: Any) -> Any:
    return await awaitable


def main() -> int:
    started = datetime.now(_UTC)
    result_file = os.environ.get("RECONCILE_RESULT_FILE")
    run_id = os.environ.get("RECONCILE_RUN_ID", "?")
    code, message = 0, ""
    api = None
    try:
        entrypoint = os.environ["RECONCILE_ENTRYPOINT"]
        parameters = json.loads(os.environ.get("RECONCILE_PARAMETERS") or "{}")
        steps = json.loads(os.environ.get("RECONCILE_PULL_STEPS") or "null")
        profile = profile_setting_names(os.environ)
        ephemeral = ephemeral_prefect_defaults(os.environ, profile)
        os.environ.update(ephemeral)  # before anything imports Prefect, which reads them once
        if not reports_to_server(os.environ, profile) and importlib.util.find_spec("prefect"):
            api = private_api(ephemeral)
        if api is not None:
            client = api.client_settings({*os.environ, *profile})
            os.environ.update(client)
        if steps:
            run_pull_steps(steps, before_prefect=api.start if api else None)
        function = load_entrypoint(entrypoint)
        if api is not None and "prefect" in sys.modules:
            api.start()  # the code uses Prefect: its flows and tasks need an API
        elif api is not None:  # Prefect is not imported yet: it reads the environment when it is
            for name in client:
                del os.environ[name]
            api.stop()
            api = None
        if ephemeral:
            quiet_temporary_server()
    except Exception as exc:
        traceback.print_exc()
        code, message = 2, f"could not set up run {run_id}: {type(exc).__name__}: {exc}"
    else:
        hidden = set(json.loads(os.environ.get("RECONCILE_SECRET_PARAMETERS") or "[]"))
        shown = {k: "***" if k in hidden else v for k, v in parameters.items()}
        print(f"[reconcile] run {run_id}: {entrypoint} with {json.dumps(shown)}", flush=True)
        try:
            call(function, parameters)
        except BaseException as exc:
            traceback.print_exc()
            code, message = 1, f"{type(exc).__name__}: {exc}"
        else:
            print(f"[reconcile] run {run_id} completed", flush=True)
    if api is not None:
        api.stop()
    if result_file:
        _write_result(Path(result_file), code, message, started)
    return code


def _write_result(path: Path, code: int, message: str, started: datetime) -> None:
    doc = {
        "exit_code": code,
        "message": message,
        "started_at": started.isoformat(),
        "ended_at": datetime.now(_UTC).isoformat(),
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc), encoding="utf-8")
    os.replace(tmp, path)


def supervise(command: list[str]) -> int:
    """Run ``command``, pass SIGTERM/SIGINT on to it, and record its exit code."""
    started = datetime.now(_UTC)
    result_file = os.environ.get("RECONCILE_RESULT_FILE")
    try:
        child = subprocess.Popen(command)
    except OSError as exc:
        print(f"[reconcile] cannot start {command[0]!r}: {exc}", file=sys.stderr, flush=True)
        if result_file:
            _write_result(
                Path(result_file), 127, f"cannot start {command[0]!r}: {exc.strerror or exc}", started
            )
        return 127

    def forward(signum: int, _frame: Any) -> None:
        child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)
    code = child.wait()
    code = code if code >= 0 else 128 - code  # killed by a signal: shell convention
    if result_file:
        message = "" if code == 0 else f"command exited with status {code}"
        _write_result(Path(result_file), code, message, started)
    return code


if __name__ == "__main__":
    if sys.argv[1:2] == ["--exec"]:
        sys.exit(supervise(sys.argv[2:]))
    sys.exit(main())

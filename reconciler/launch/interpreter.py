"""What a local launch needs before it starts: the module its command runs, importable where it runs.

A job whose command is ``PYTHON -m MODULE`` (our runtime, or Prefect's engine for a run on a Prefect
server) dies at once if MODULE is not installed for PYTHON, and the reason is only in its log. The
process launcher asks here first and refuses with what to install. The answer comes from
``importlib.util.find_spec`` run by that interpreter, in the job's working directory and with its
``PYTHONPATH``; a found module is remembered for the process's life, a missing one for
``RECHECK_AFTER`` seconds (someone may install it while ``serve`` runs).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

from reconciler.errors import LaunchError
from reconciler.infra.install import install_hint

RECHECK_AFTER = 60.0
_PROBE = "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec(sys.argv[1]) else 3)"
_MISSING = 3
_PIP_NAMES = {"prefect": "prefect"}  # module -> the extra of ours that installs it

_Key = tuple[str, str, str, str]
_found: dict[_Key, float] = {}  # key -> when it was checked (found: forever; missing: RECHECK_AFTER)
_missing: dict[_Key, tuple[float, str]] = {}
_guard = threading.Lock()


def module_command(command: Sequence[str]) -> tuple[str, str] | None:
    """``(interpreter, module)`` of a ``PYTHON -m MODULE ...`` command; None for any other command."""
    if len(command) >= 3 and command[1] == "-m":
        return command[0], command[2]
    return None


def check_command(command: Sequence[str], *, cwd: str, pythonpath: str = "") -> None:
    """Raise LaunchError saying what to install if ``command`` runs a module its interpreter lacks."""
    found = module_command(command)
    if found is None:
        return
    interpreter, module = found
    problem = _problem(interpreter, module, cwd, pythonpath)
    if problem is not None:
        raise LaunchError(problem)


def _problem(interpreter: str, module: str, cwd: str, pythonpath: str) -> str | None:
    key = (interpreter, module, cwd, pythonpath)
    now = time.monotonic()
    with _guard:
        if key in _found:
            return None
        missing = _missing.get(key)
        if missing is not None and now - missing[0] < RECHECK_AFTER:
            return missing[1]
    problem = _probe(interpreter, module, cwd, pythonpath)
    with _guard:
        if problem is None:
            _found[key] = now
            _missing.pop(key, None)
        else:
            _missing[key] = (now, problem)
    return problem


def _probe(interpreter: str, module: str, cwd: str, pythonpath: str) -> str | None:
    env = {**os.environ, "PYTHONPATH": pythonpath}
    top = module.partition(".")[0]
    try:
        done = subprocess.run(
            [interpreter, "-c", _PROBE, top],
            cwd=cwd or None,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
            check=False,
        )
    except FileNotFoundError:
        return (
            f"the job's interpreter {interpreter!r} does not exist (its command: {interpreter} -m {module})"
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot run the job's interpreter {interpreter!r}: {exc}"
    if done.returncode == 0:
        return None
    if done.returncode != _MISSING:
        first = (done.stderr.decode("utf-8", "replace").strip().splitlines() or ["no output"])[-1]
        return f"the job's interpreter {interpreter!r} fails to start: {first}"
    return f"the job runs `{interpreter} -m {module}`, but {top} is not installed for {interpreter}; " + (
        f"install it: {_hint(interpreter, top)}"
    )


def _hint(interpreter: str, module: str) -> str:
    """Our extra when the job runs with reconcile's own interpreter; else pip of that interpreter."""
    extra = _PIP_NAMES.get(module)
    path = shutil.which(interpreter) or interpreter  # a venv's python links to another: not realpath
    if extra is not None and os.path.abspath(path) == os.path.abspath(sys.executable):
        return install_hint(extra)
    return f"{interpreter} -m pip install {module}"


def forget() -> None:
    """Drop every remembered answer (tests; a long-lived process after an install)."""
    with _guard:
        _found.clear()
        _missing.clear()

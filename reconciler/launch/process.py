"""The ``process`` launcher: each run is a detached local subprocess running the runtime module.

The run's directory (``.reconcile/runs/<run id>/``) holds its log, its pid and the result file the
runtime writes when the flow ends, so any later ``reconcile`` process (``runs``, ``run --wait``,
``serve``) can follow a run it did not start. A process that vanished without writing its result
was killed or crashed: CRASHED.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from reconciler.errors import LaunchError
from reconciler.launch import interpreter
from reconciler.launch.base import ENV_RESULT_FILE, Job, JobStatus, LogChunk
from reconciler.launch.process_env import base_environment
from reconciler.objects import parse_iso
from reconciler.state import RunState

_PREFIX = "process"
_RUNTIME = "reconciler.runtime"
# The runtime must be importable in the child even when reconcile runs from a source checkout.
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


class ProcessLauncher:
    """Launches runs as subprocesses of this machine; ``runs_dir`` is shared by every reconcile here.

    A run starts from ``process_env.base_environment(environ)`` (the launcher's environment, or
    only an allow-list of it under GitHub Actions) plus its job's own variables.
    """

    def __init__(self, runs_dir: Path, *, environ: Mapping[str, str] | None = None) -> None:
        self.runs_dir = Path(runs_dir)
        self._environ = os.environ if environ is None else environ
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    def submit(self, job: Job) -> str:
        existing = self.find(job)
        if existing is not None:
            return existing
        self.check(job)
        run_dir = self._run_dir(job.run_id)
        run_dir.mkdir(parents=True, exist_ok=True)
        log_path = Path(job.log_path) if job.log_path else run_dir / "log.txt"
        command, cwd, env = self._process(job)
        env[ENV_RESULT_FILE] = str(run_dir / "result.json")
        if command[-2:] != ["-m", _RUNTIME]:  # anything else runs under the runtime's supervisor
            command = [sys.executable, "-m", _RUNTIME, "--exec", *command]
        try:
            with open(log_path, "ab") as log:
                child = subprocess.Popen(
                    command,
                    cwd=cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        except OSError as exc:
            raise LaunchError(f"cannot start {command[0]!r} in {cwd}: {exc.strerror or exc}") from exc
        self._children[child.pid] = child
        infrastructure_id = _make_id(child.pid, job.run_id)
        (run_dir / "pid").write_text(infrastructure_id, encoding="utf-8")
        return infrastructure_id

    def check(self, job: Job) -> None:
        """Raise LaunchError, saying what to install, if the job's ``PYTHON -m MODULE`` command would
        die at once because MODULE is not importable there (Prefect's engine, for a run on a Prefect
        server, where Prefect is not installed): refused before anything starts."""
        command, cwd, env = self._process(job)
        interpreter.check_command(command, cwd=str(cwd), pythonpath=env.get("PYTHONPATH", ""))

    def _process(self, job: Job) -> tuple[list[str], Path, dict[str, str]]:
        """The job's command, working directory and environment (without the result file)."""
        config = job.configuration
        cwd = Path(job.project_dir)
        if config.get("working_dir"):
            cwd = (cwd / str(config["working_dir"])).resolve()
        env = {**base_environment(self._environ), **job.env}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (_PACKAGE_ROOT, env.get("PYTHONPATH"))))
        command = list(job.command)
        if config.get("command"):
            command = shlex.split(str(config["command"]))
        return command, cwd, env

    def find(self, job: Job) -> str | None:
        pid_file = self._run_dir(job.run_id) / "pid"
        try:
            return pid_file.read_text(encoding="utf-8").strip() or None
        except FileNotFoundError:
            return None

    def poll(self, job: Job, infrastructure_id: str) -> JobStatus:
        host, pid, start, run_id = _parse_id(infrastructure_id)
        result = self._result(run_id)
        if result is not None:
            return result
        if host != socket.gethostname():
            return JobStatus(RunState.RUNNING, message=f"running on {host}; follow it from there")
        if self._alive(pid, start):
            return JobStatus(RunState.RUNNING)
        result = self._result(run_id)  # it may have finished between the two checks
        if result is not None:
            return result
        said = failure_line(self._run_dir(run_id) / "log.txt")
        return JobStatus(
            RunState.CRASHED,
            exit_code=self._exit_code(pid),
            message=f"the run's process ended without reporting a result: {said}"
            if said
            else "the run's process ended without reporting a result (killed or crashed)",
            ended_at=datetime.now(UTC),
        )

    def cancel(self, job: Job, infrastructure_id: str) -> None:
        host, pid, start, _ = _parse_id(infrastructure_id)
        if host != socket.gethostname():
            raise LaunchError(f"the run's process is on {host}; cancel it from there")
        if self._alive(pid, start):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)

    def logs(self, job: Job, infrastructure_id: str, *, cursor: int = 0) -> LogChunk:
        _, _, _, run_id = _parse_id(infrastructure_id)
        path = self._run_dir(run_id) / "log.txt"
        try:
            with open(path, "rb") as handle:
                handle.seek(cursor)
                data = handle.read()
        except FileNotFoundError:
            return LogChunk("", cursor, str(path))
        return LogChunk(data.decode("utf-8", "replace"), cursor + len(data), str(path))

    def close(self) -> None:
        for child in self._children.values():
            child.poll()  # reap finished children; running ones stay detached and keep going

    # -- helpers -----------------------------------------------------------------------------------

    def _run_dir(self, run_id: str) -> Path:
        return self.runs_dir / run_id

    def _result(self, run_id: str) -> JobStatus | None:
        try:
            doc = json.loads((self._run_dir(run_id) / "result.json").read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None
        code = int(doc.get("exit_code", 1))
        state = RunState.COMPLETED if code == 0 else RunState.FAILED
        message = str(doc.get("message", ""))
        if code != 0 and _SUPERVISOR_ONLY.fullmatch(message):  # only an exit status: say why from the log
            said = failure_line(self._run_dir(run_id) / "log.txt")
            message = f"{message}: {said}" if said and message else (said or message)
        return JobStatus(
            state,
            exit_code=code,
            message=message,
            started_at=parse_iso(doc.get("started_at")),
            ended_at=parse_iso(doc.get("ended_at")),
        )

    def _alive(self, pid: int, start: int) -> bool:
        child = self._children.get(pid)
        if child is not None:
            return child.poll() is None
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap if it is our zombie child; harmless otherwise
        stat = _proc_stat(pid)
        return stat is not None and stat[1] == start and stat[0] != "Z"

    def _exit_code(self, pid: int) -> int | None:
        child = self._children.get(pid)
        if child is not None and child.returncode is not None:
            return child.returncode
        return None


# What the runtime's supervisor (``runtime.supervise``) records for a command it ran: an exit status and
# nothing about why; an empty message says no more.
_SUPERVISOR_ONLY = re.compile(r"(command exited with status -?\d+)?")
_TRACEBACK = "Traceback (most recent call last):"
_TAIL = 64 * 1024  # a failure's reason is near the end of its log
_REASON_MAX = 300


def failure_line(log_path: Path) -> str | None:
    """Why a run that reported nothing ended, from its log: the exception line of its last traceback
    (``ModuleNotFoundError: No module named 'prefect'``), else its first non-empty line; None if the
    log is empty or missing."""
    try:
        with open(log_path, "rb") as handle:
            head = handle.read(_TAIL)
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - _TAIL))
            tail = handle.read()
    except OSError:
        return None
    text = tail.decode("utf-8", "replace")
    if _TRACEBACK in text:
        after = text[text.rindex(_TRACEBACK) :].splitlines()[1:]
        ends = [line for line in after if line.strip() and not line[:1].isspace()]
        if ends:
            return _clip(ends[0])
    first = next((line for line in head.decode("utf-8", "replace").splitlines() if line.strip()), None)
    return _clip(first) if first else None


def _clip(line: str) -> str:
    line = line.strip()
    return line if len(line) <= _REASON_MAX else line[: _REASON_MAX - 1] + "…"


def _make_id(pid: int, run_id: str) -> str:
    stat = _proc_stat(pid)
    start = stat[1] if stat else 0
    return f"{_PREFIX}:{socket.gethostname()}:{pid}:{start}:{run_id}"


def _parse_id(infrastructure_id: str) -> tuple[str, int, int, str]:
    try:
        prefix, host, pid, start, run_id = infrastructure_id.split(":", 4)
        if prefix != _PREFIX:
            raise ValueError(prefix)
        return host, int(pid), int(start), run_id
    except ValueError:
        raise LaunchError(f"not a process infrastructure id: {infrastructure_id!r}") from None


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """``(state letter, start time in clock ticks)`` from /proc, so a reused pid is not mistaken."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        if sys.platform != "linux":
            try:
                os.kill(pid, 0)
                return ("R", 0)
            except OSError:
                return None
        return None
    fields = raw[raw.rfind(")") + 2 :].split()
    return fields[0], int(fields[19])

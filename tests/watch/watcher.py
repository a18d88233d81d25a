"""Drive ``reconcile --watch`` as a user does: a real subprocess, its output read line by line.

The reader thread collects stdout and stderr (merged, so an invalid save's ``FILE:LINE:COL`` lines
are seen in order with the rest). Every process a test starts is stopped by pid: the watcher itself,
and the detached run processes it launched (their pids are in ``.reconcile/runs/*/pid``).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from reconciler import state
from reconciler.state import HistoryEntry, RunRecord, Store
from tests.helpers import REPO, run_cli


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILE_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(REPO), env.get("PYTHONPATH"))))
    env["NO_COLOR"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Watcher:
    """One ``python -m reconciler -C ROOT ARGS...`` process and everything it printed."""

    def __init__(self, root: Path, *args: str) -> None:
        self.root = root
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "-C", str(root), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=cli_env(),
        )
        self.lines: list[str] = []
        self.cursor = 0  # expect() searches from here and moves past what it found
        self._cond = threading.Condition()
        self._eof = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    @property
    def output(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def expect(self, pattern: str, *, timeout: float = 10.0) -> re.Match[str]:
        """The first line from the cursor matching ``pattern`` (waiting for it); the cursor moves past it."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i in range(self.cursor, len(self.lines)):
                    match = regex.search(self.lines[i])
                    if match:
                        self.cursor = i + 1
                        return match
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._eof:
                    so_far = "\n".join(self.lines)
                    raise AssertionError(f"no line matching {pattern!r} within {timeout}s; output:\n{so_far}")
                self._cond.wait(remaining)

    def absent(self, pattern: str, *, within: float) -> None:
        """No line from the cursor matches ``pattern`` during the next ``within`` seconds."""
        regex = re.compile(pattern)
        time.sleep(within)
        with self._cond:
            found = [line for line in self.lines[self.cursor :] if regex.search(line)]
        assert not found, f"unexpected {found!r}; output:\n{self.output}"

    def stop(self, sig: int = signal.SIGINT, *, timeout: float = 10.0) -> int:
        """Send ``sig`` and wait for the exit code (and the rest of the output)."""
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def kill(self) -> None:
        """Teardown: make sure the watcher is gone (by pid), whatever the test did."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def run_pids(root: Path) -> list[int]:
    """Pids of the run processes launched in this project that are still alive (same start time)."""
    alive = []
    for pid_file in (root / ".reconcile" / "runs").glob("*/pid"):
        with contextlib.suppress(OSError, ValueError):
            _, _, pid, start, _ = pid_file.read_text().strip().split(":", 4)
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rfind(")") + 2 :].split()
            if fields[19] == start and fields[0] != "Z":
                alive.append(int(pid))
    return alive


def kill_runs(root: Path) -> None:
    for pid in run_pids(root):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


class StoreView:
    """The project's real SQLite store, read in-process (no CLI start-up per look) and closed each time."""

    def __init__(self, root: Path, project: str) -> None:
        self.url = f"sqlite:///{(root / '.reconcile' / 'state.db').resolve()}"
        self.project = project

    def _read(self, what: Callable[[Store], Any]) -> Any:
        store = state.open_store(self.url, project=self.project)
        try:
            return what(store)
        finally:
            store.close()

    def versions(self) -> dict[str, int]:
        return self._read(lambda s: {str(a): o.version for a, o in s.read_all().objects.items()})

    def history(self) -> list[HistoryEntry]:
        return self._read(lambda s: s.history())

    def runs(self) -> list[RunRecord]:
        """Runs, oldest first."""
        return self._read(lambda s: sorted(s.list_runs(), key=lambda r: r.created_at))


def cli_json(root: Path, *args: str) -> Any:
    result = run_cli("-C", str(root), *args, "--json")
    assert result.returncode == 0, result.stderr
    return orjson.loads(result.stdout)


def save(path: Path, text: str) -> None:
    """Write a file as an editor does: the whole content, in place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")

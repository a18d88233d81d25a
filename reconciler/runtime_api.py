"""Prefect's API server for one run of a ``@flow`` that reports to no Prefect server.

Prefect 3 runs flows and tasks only against an API: its engine opens a client for each, and with no
``PREFECT_API_URL`` Prefect starts a temporary server per run (``SubprocessASGIServer`` in
``prefect/server/api/server.py``). That costs the job an import of the whole server just to get the
class, then a wait while a second interpreter imports it again, migrates an empty database (~150
Alembic revisions) and registers block types, with its output in the run's log and a 20 s start-up
timeout a loaded machine misses. :class:`PrivateApi` starts the same server (uvicorn serving Prefect's
app factory in ephemeral mode, as Prefect does) for the runtime instead:

* on a socket bound before Prefect is imported, so ``PREFECT_API_URL`` is set from the start and no
  port is raced for (uvicorn's ``--fd``);
* with its output in a file of its own, shown only when it fails to start;
* on a copy of a database migrated once per Prefect version (``~/.cache/prefect-reconciler``), so it
  only starts (no migration, no block registration); the first run on a machine migrates and leaves
  its freshly migrated database as that copy. Every run has its own file: no "database is locked"
  between concurrent runs.

Standard library only, like the runtime that imports it (``reconciler.runtime``); the runtime that
travels alone into a push pool's job does without it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Mapping, Set
from pathlib import Path
from typing import Any

_CACHE_SCHEMA = "SELECT count(*) FROM alembic_version, block_type"


class PrivateApi:
    """The server, bound at construction and started by :meth:`start` when the run's code uses
    Prefect. ``server_settings``: the job's defaults for a server (``runtime.EPHEMERAL_SERVER_DEFAULTS``
    the user did not set); its database is this run's copy unless the user chose a database."""

    def __init__(self, server_settings: Mapping[str, str]) -> None:
        self._settings = dict(server_settings)
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(64)
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}/api"
        self._dir = Path(tempfile.mkdtemp(prefix="reconcile-prefect-api-"))
        self._server: subprocess.Popen[bytes] | None = None

    def client_settings(self, chosen: Set[str]) -> dict[str, str]:
        """What the job's Prefect needs to use this server: its URL, and no UI URL (unless ``chosen``)
        so the engine links no page of a server that is gone after the run."""
        return {"PREFECT_API_URL": self.url, **({} if "PREFECT_UI_URL" in chosen else {"PREFECT_UI_URL": ""})}

    def start(self) -> None:
        """Start the server (once) and return when it answers; RuntimeError, with the end of its own
        output, when it cannot start."""
        if self._server is not None:
            return
        env = {**os.environ, **self._settings, "PREFECT_UI_ENABLED": "0"}
        env.update({"PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"})
        template = _database_cache() if "PREFECT_API_DATABASE_CONNECTION_URL" in self._settings else None
        database = self._dir / "prefect.db"
        if template is not None:
            env["PREFECT_API_DATABASE_CONNECTION_URL"] = "sqlite+aiosqlite:///" + str(database)
            if _copy_database(template, database):
                env["PREFECT_API_DATABASE_MIGRATE_ON_START"] = "false"
                env["PREFECT_API_BLOCKS_REGISTER_ON_START"] = "false"
        fd = self._socket.fileno()
        command = [sys.executable, "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app"]
        command += ["--fd", str(fd), "--log-level", "error", "--lifespan", "on"]
        with open(self._dir / "server.log", "wb") as log:
            self._server = subprocess.Popen(
                command, env=env, pass_fds=(fd,), stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        self._socket.close()  # the server holds it now
        self._stop_on_sigterm()
        self._wait(float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS") or 120))
        if template is not None and env.get("PREFECT_API_DATABASE_MIGRATE_ON_START") != "false":
            _copy_database(database, template)  # migrated and blocks registered: what the next run needs

    def _stop_on_sigterm(self) -> None:
        """A cancelled run (SIGTERM to its process group) still removes its database, then ends by
        the signal as it would have; a handler the flow's code installs later takes precedence."""
        if threading.current_thread() is not threading.main_thread():
            return
        previous = signal.getsignal(signal.SIGTERM)

        def stop_then_end(signum: int, frame: Any) -> None:
            self.stop()
            if callable(previous):
                previous(signum, frame)
                return
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

        signal.signal(signal.SIGTERM, stop_then_end)

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if self._server is None or self._server.poll() is not None or time.monotonic() > deadline:
                said = (self._dir / "server.log").read_text(encoding="utf-8", errors="replace")
                said = "\n".join(said.strip().splitlines()[-20:]) or "no output"
                raise RuntimeError(f"Prefect's API server for this run did not start:\n{said}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop the server and remove its database; the run's result does not depend on it."""
        self._socket.close()
        if self._server is not None and self._server.poll() is None:
            self._server.terminate()
            try:
                self._server.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._server.kill()
                self._server.wait()
        shutil.rmtree(self._dir, ignore_errors=True)


def _database_cache() -> Path | None:
    """Where the migrated database for this Prefect version is kept; None without a version."""
    try:
        from importlib.metadata import version

        prefect_version = version("prefect")
    except Exception:
        return None
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "prefect-reconciler" / f"prefect-{prefect_version}-api.db"


def _copy_database(source: Path, target: Path) -> bool:
    """Copy a migrated SQLite database with SQLite's backup API (consistent even while a server has
    it open), through a temporary file so a reader never sees half a copy; False if ``source`` is
    missing, not migrated, or the copy fails (the server then migrates as usual)."""
    if not source.is_file():
        return False
    partial = target.with_name(f".{target.name}.{os.getpid()}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.closing(sqlite3.connect(source.resolve().as_uri() + "?mode=ro", uri=True)) as src:
            if not src.execute(_CACHE_SCHEMA).fetchone()[0]:
                return False
            with contextlib.closing(sqlite3.connect(partial)) as dst:
                src.backup(dst)
                dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file (Prefect sets WAL)
        os.replace(partial, target)
        return True
    except (OSError, sqlite3.Error):
        with contextlib.suppress(OSError):
            partial.unlink()
        return False

"""Start ``reconcile`` processes without paying for Python's start and our imports each time.

About 750 tests run ``python -m reconciler ARGS`` as a real process (its own exit code, stdout and
stderr on pipes, no TTY, the environment and working directory the test gives). Most of each one's CPU
was the interpreter starting and importing the package. A zygote process imports the package once;
each run is a fork of it that takes the test's arguments, environment, working directory and pipes,
then calls the CLI's ``main`` exactly as ``reconciler/__main__.py`` does. The test still gets a
process of its own, which ends with its own exit code (``main`` ends every run with ``os._exit``).

One zygote per test process (each xdist worker), started on first use and ended with it. Each run is
a connection of its own, so runs from several threads of one test proceed at once. Set
``RECONCILE_TEST_FRESH_PROCESSES=1`` to start every run as a fresh interpreter instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FRESH_ENV = "RECONCILE_TEST_FRESH_PROCESSES"
_lock = threading.Lock()
_zygote: _Zygote | None = None


def available() -> bool:
    return hasattr(os, "fork") and hasattr(socket, "send_fds") and not os.environ.get(FRESH_ENV)


def run(
    args: Sequence[str],
    *,
    cwd: Path | str | None,
    env: Mapping[str, str],
    input: str | None,
    timeout: float,
) -> subprocess.CompletedProcess[str]:
    """``subprocess.run([python, -m, reconciler, *args], capture_output=True, text=True, ...)``'s result."""
    command = [sys.executable, "-m", "reconciler", *args]
    zygote = _started()
    stdin_r, stdin_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    request = {"args": list(args), "cwd": str(cwd or os.getcwd()), "env": dict(env)}
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(zygote.path)
        socket.send_fds(conn, [json.dumps(request).encode() + b"\n"], [stdin_r, out_w, err_w])
        for fd in (stdin_r, out_w, err_w):
            os.close(fd)
        answers = conn.makefile("r")
        pid = int(json.loads(answers.readline())["pid"])
        feeder = threading.Thread(target=_feed, args=(stdin_w, input or ""), daemon=True)
        feeder.start()
        try:
            out, err = _collect(out_r, err_r, deadline=time.monotonic() + timeout)
        except subprocess.TimeoutExpired:
            _kill(pid)
            raise subprocess.TimeoutExpired(command, timeout) from None
        finally:
            feeder.join(timeout=5)
        code = int(json.loads(answers.readline())["code"])
    return subprocess.CompletedProcess(command, code, out, err)


def _feed(fd: int, text: str) -> None:
    try:
        with open(fd, "w", encoding="utf-8", closefd=True) as stdin:
            stdin.write(text)
    except BrokenPipeError:
        pass  # the command did not read its input (as with subprocess.run)


def _collect(out_r: int, err_r: int, *, deadline: float) -> tuple[str, str]:
    chunks: dict[int, list[bytes]] = {out_r: [], err_r: []}
    with selectors.DefaultSelector() as selector:
        for fd in chunks:
            selector.register(fd, selectors.EVENT_READ)
        try:
            while selector.get_map():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise subprocess.TimeoutExpired("reconcile", 0)
                for key, _ in selector.select(timeout=remaining):
                    data = os.read(key.fd, 65536)
                    if data:
                        chunks[key.fd].append(data)
                    else:
                        selector.unregister(key.fd)
        finally:
            for fd in chunks:
                os.close(fd)
    return _text(chunks[out_r]), _text(chunks[err_r])


def _text(chunks: list[bytes]) -> str:
    """As ``subprocess.run(text=True)`` decodes (universal newlines)."""
    return b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


class _Zygote:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="reconcile-zygote-"))
        self.path = str(self.dir / "socket")
        env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILE_")}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(REPO), env.get("PYTHONPATH"))))
        # the zygote ends when this process does, however it ends: it watches a pipe only we hold
        self._alive_r, self._alive_w = os.pipe()
        code = "import sys; from tests.zygote import serve; serve(sys.argv[1], int(sys.argv[2]))"
        with open(self.dir / "zygote.log", "wb") as log:  # never the test run's own output pipes
            self.process = subprocess.Popen(
                [sys.executable, "-c", code, self.path, str(self._alive_r)],
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                pass_fds=(self._alive_r,),
            )
        os.close(self._alive_r)
        deadline = time.monotonic() + 60
        while not os.path.exists(self.path):
            if self.process.poll() is not None or time.monotonic() > deadline:
                said = (self.dir / "zygote.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the reconcile zygote did not start:\n{said}")
            time.sleep(0.02)

    def stop(self) -> None:
        """End the zygote by its pid (runs in flight finish on their own) and remove its directory."""
        os.close(self._alive_w)
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def _started() -> _Zygote:
    global _zygote
    with _lock:
        if _zygote is None or _zygote.process.poll() is not None:
            _zygote = _Zygote()
        return _zygote


def stop() -> None:
    """Stop this process's zygote, if it started one (the test session's end calls this)."""
    global _zygote
    with _lock:
        if _zygote is not None:
            _zygote.stop()
            _zygote = None


# -- the zygote's side ------------------------------------------------------------------------------


def serve(path: str, alive: int) -> None:
    """Import what a run needs, then fork one supervisor per connection (which forks the run);
    return when ``alive`` (a pipe the test process holds) reads end of file."""
    import reconciler.cli
    import reconciler.engine
    import reconciler.launch
    import reconciler.state.sql.store

    del reconciler
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # supervisors are reaped by the kernel
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path + ".partial")
    listener.listen(64)
    os.replace(path + ".partial", path)
    with selectors.DefaultSelector() as selector:
        selector.register(listener, selectors.EVENT_READ)
        selector.register(alive, selectors.EVENT_READ)
        while True:
            ready = {key.fileobj for key, _ in selector.select()}
            if alive in ready:
                return  # the test process is gone
            conn, _ = listener.accept()
            if os.fork() == 0:
                listener.close()
                os.close(alive)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                try:
                    _supervise(conn)
                finally:
                    os._exit(0)
            conn.close()


def _supervise(conn: socket.socket) -> None:
    message, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
    request = json.loads(message.decode())
    pid = os.fork()
    if pid == 0:
        conn.close()
        _become_the_run(request, fds)
    for fd in fds:
        os.close(fd)
    conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")
    _, status = os.waitpid(pid, 0)
    conn.sendall(json.dumps({"code": os.waitstatus_to_exitcode(status)}).encode() + b"\n")


def _become_the_run(request: dict[str, object], fds: list[int]) -> None:
    """In the forked child: the test's stdio, directory, environment and argv, then ``main``."""
    try:
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        cwd = str(request["cwd"])
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(dict(request["env"]))  # type: ignore[call-overload]
        sys.path[0] = cwd  # as `python -m` puts the working directory first
        sys.argv = [str(REPO / "reconciler" / "__main__.py"), *list(request["args"])]  # type: ignore[call-overload]
        signal.signal(signal.SIGINT, signal.default_int_handler)
        random.seed()  # a fresh interpreter's seed, not the zygote's (backoff jitter differs per run)
        from reconciler.cli import main

        main()  # ends the process with os._exit
    finally:
        os._exit(70)

"""Shared test helpers: run the real CLI in a subprocess, build throwaway projects."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path

from tests import zygote

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "examples" / "quickstart"

HELLO_FLOW = '''
import os


def hello(name: str = "world", times: int = 1) -> str:
    """Say hello."""
    for _ in range(times):
        print(f"hello {name} {os.environ.get('STAGE', '')}", flush=True)
    return name


def fail(code: int = 3) -> None:
    raise SystemExit(code)


def boom() -> None:
    raise RuntimeError("flow failed on purpose")
'''


def run_cli(
    *args: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """``python -m reconciler ARGS`` as a user runs it: real process, real exit code, no TTY."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILE_")}
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(REPO), full_env.get("PYTHONPATH"))))
    full_env["NO_COLOR"] = "1"
    full_env.update(env or {})
    if zygote.available():  # the same process, forked from one that has imported the package
        return zygote.run(args, cwd=cwd, env=full_env, input=input, timeout=timeout)
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        cwd=cwd,
        env=full_env,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def make_project(root: Path, prefect_yaml: str, flows: Mapping[str, str] | None = None) -> Path:
    """A project directory with a prefect.yaml (dedented) and flow files (default: flows/hello.py)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "prefect.yaml").write_text(textwrap.dedent(prefect_yaml).lstrip(), encoding="utf-8")
    for relpath, source in (flows or {"flows/hello.py": HELLO_FLOW}).items():
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source), encoding="utf-8")
    return root

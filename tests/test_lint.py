"""House rules that CI enforces: ruff clean, ruff-formatted, and the layering contracts kept."""

from __future__ import annotations

import shutil
import subprocess
import sys

from tests.helpers import REPO


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)


def test_ruff_check_is_clean() -> None:
    result = _run(sys.executable, "-m", "ruff", "check", "reconciler", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean() -> None:
    result = _run(sys.executable, "-m", "ruff", "format", "--check", "reconciler", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_layers_are_kept() -> None:
    exe = shutil.which("lint-imports")
    assert exe, "import-linter is part of the test extra"
    result = _run(exe)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" not in result.stdout.split("Contracts:")[-1].replace("0 broken", "")

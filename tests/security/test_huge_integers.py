"""An integer beyond 64 bits anywhere in the file (JSON text can hold it; orjson, which this tool and
Prefect's server encode with, cannot) is a located error, never an internal error at plan time."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import make_project, run_cli


@pytest.mark.parametrize(
    ("section", "where"),
    [
        (
            "deployments:\n  - name: d\n    entrypoint: flows/hello.py:hello\n"
            "    parameters: {times: 99999999999999999999999}\n",
            "prefect.yaml:5:25: deployments[0].parameters.times",
        ),
        ("variables:\n  - {name: v, value: [-9223372036854775809]}\n", "prefect.yaml:3:"),
    ],
)
def test_a_number_beyond_64_bits_is_a_located_error(tmp_path: Path, section: str, where: str) -> None:
    root = make_project(tmp_path / "p", "name: big\n" + section)
    for command in ("validate", "plan"):
        result = run_cli("-C", str(root), command)
        assert result.returncode == 1, result.stdout + result.stderr
        assert where in result.stderr and "the number is too large" in result.stderr
        assert "internal error" not in result.stderr
    assert not (root / ".reconcile").exists()

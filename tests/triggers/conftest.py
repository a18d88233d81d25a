"""Fixtures for trigger tests: real Git repositories in tmp dirs, the fake GitHub server, run cleanup."""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.fakes.github import FakeGitHub

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


class GitRepo:
    """A throwaway repository driven by the real git CLI, as a user would build it."""

    def __init__(self, root: Path, branch: str = "main") -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", branch)
        self.git("config", "commit.gpgsign", "false")

    @classmethod
    def existing(cls, root: Path) -> GitRepo:
        """A handle on a repository made some other way (a clone)."""
        repo = cls.__new__(cls)
        repo.root = root
        return repo

    def git(self, *args: str) -> str:
        env = {**os.environ, **GIT_ENV, "HOME": str(self.root)}
        done = subprocess.run(
            ["git", *args], cwd=self.root, env=env, capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    def write(self, files: Mapping[str, str]) -> None:
        for relpath, text in files.items():
            path = self.root / relpath
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")

    def commit(
        self,
        message: str,
        files: Mapping[str, str] | None = None,
        *,
        delete: tuple[str, ...] = (),
        rename: Mapping[str, str] | None = None,
    ) -> str:
        """Write/delete/rename files, commit everything, return the new commit's sha."""
        for old, new in (rename or {}).items():
            (self.root / new).parent.mkdir(parents=True, exist_ok=True)
            self.git("mv", old, new)
        for relpath in delete:
            self.git("rm", "-q", relpath)
        self.write(files or {})
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.head()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    def checkout(self, *args: str) -> None:
        self.git("checkout", "-q", *args)


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    return GitRepo(tmp_path / "repo")


@pytest.fixture
def fake_github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        yield fake


def wait_runs(project_dir: Path, timeout: float = 30.0) -> None:
    """Wait until every process run under the project wrote its result; kill stragglers by pid."""
    runs_dir = project_dir / ".reconcile" / "runs"
    deadline = time.monotonic() + timeout
    pending = []
    while time.monotonic() < deadline:
        pending = [d for d in runs_dir.glob("*") if (d / "pid").exists() and not (d / "result.json").exists()]
        if not pending:
            return
        time.sleep(0.1)
    for run_dir in pending:
        _, _, pid, start, _ = (run_dir / "pid").read_text().split(":", 4)
        stat = Path(f"/proc/{pid}/stat")
        if stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[19] == start:
            os.killpg(int(pid), signal.SIGKILL)
    raise AssertionError(f"runs did not finish in {timeout}s: {[d.name for d in pending]}")


def invoke(project: Path, *args: str, env: Mapping[str, str | None] | None = None) -> tuple[int, str, str]:
    """The real command line in-process (click's CliRunner through our group's exit contract).

    Most checks run here rather than in a subprocess: the box is shared and an interpreter start with
    our imports costs ~1 s under load; the subprocess path is covered by the Action's end-to-end tests.
    """
    from click.testing import CliRunner

    from reconciler.cli import cli

    base: dict[str, str | None] = {k: None for k in os.environ if k.startswith(("RECONCILE_", "GITHUB_"))}
    result = CliRunner().invoke(
        cli, ["-C", str(project), *args], env={**base, "NO_COLOR": "1", **(env or {})}
    )
    return result.exit_code, result.stdout, result.stderr


def parse_github_output(text: str) -> dict[str, str]:
    """Read a GITHUB_OUTPUT file the way the runner does: ``k=v`` lines and ``k<<DELIM`` heredocs."""
    values: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            body: list[str] = []
            for inner in lines:
                if inner == delimiter:
                    break
                body.append(inner)
            values[name] = "\n".join(body)
        elif "=" in line:
            name, value = line.split("=", 1)
            values[name] = value
    return values

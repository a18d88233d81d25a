"""Options as a newcomer types them: both spellings of watch take the same options, exclusive formats
are a usage error, and every install hint works for how this copy was installed."""

from __future__ import annotations

from pathlib import Path

from reconciler.infra import install
from tests.helpers import make_project, run_cli
from tests.watch.watcher import Watcher

PROJECT = """\
work_pools:
  - name: local
    type: process
deployments:
  - name: greet
    entrypoint: flows/hello.py:hello
    work_pool: {name: local}
"""


def test_watch_options_are_taken_by_both_spellings(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", PROJECT)
    for spelling in (("--watch",), ("watch",)):
        w = Watcher(project, *spelling, "--plan-only", "--burst-window", "1", "--lock-timeout", "5")
        try:
            w.expect(r"^Watching ", timeout=30)
            assert w.stop() == 0
        finally:
            w.kill()


def test_watch_options_without_watch_are_a_usage_error(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", PROJECT)
    done = run_cli("-C", str(project), "--burst-window", "1", "plan")
    assert done.returncode == 1 and "--burst-window go with --watch" in done.stderr


def test_json_and_markdown_together_are_a_usage_error(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", PROJECT)
    done = run_cli("-C", str(project), "plan", "--json", "--markdown")
    assert done.returncode == 1 and "mutually exclusive" in done.stderr and done.stdout == ""


def test_install_hints_name_the_clone_for_an_editable_install() -> None:
    """This copy is installed from a clone (pip install -e): the hint names that clone, whose
    pyproject.toml declares the extra, never the package index where it does not exist."""
    hint = install.install_hint("aws")
    assert hint.startswith("pip install -e '") and hint.endswith("[aws]'"), hint
    clone = Path(hint.removeprefix("pip install -e '").removesuffix("[aws]'"))
    assert (clone / "pyproject.toml").is_file() and "aws = [" in (clone / "pyproject.toml").read_text()

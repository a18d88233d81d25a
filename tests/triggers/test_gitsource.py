"""Reading the desired state from a Git commit (no checkout), and the working tree's Git info."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler import desired as desired_state
from reconciler.desired.source import OutsideProject
from reconciler.errors import SpecError
from reconciler.objects import Address, Kind
from tests.triggers.conftest import GitRepo

YAML_V1 = """
name: gitproj
work_pools:
  - {name: local, type: process}
deployments:
  - name: daily
    entrypoint: flows/etl.py:etl
    parameters: {rows: 1}
    work_pool: {name: local}
"""
FLOW_V1 = '''
def etl(rows: int = 1):
    """Version one."""
    return rows
'''
FLOW_V2 = '''
from prefect import flow


@flow(name="etl-v2")
def etl(rows: int = 1):
    """Version two."""
    return rows
'''


def _load(tree: desired_state.SourceTree) -> desired_state.Desired:
    return desired_state.load(tree, "prefect.yaml", environ={}, fingerprint_key=b"k" * 32)


def _deployments(desired: desired_state.Desired) -> dict[str, dict]:
    return {r.address.name: dict(r.body) for r in desired.of_kind(Kind.DEPLOYMENT)}


def test_each_ref_plans_what_that_commit_says_including_flow_files(repo: GitRepo) -> None:
    c1 = repo.commit("one", {"prefect.yaml": YAML_V1, "flows/etl.py": FLOW_V1})
    c2 = repo.commit(
        "two", {"prefect.yaml": YAML_V1.replace("rows: 1}", "rows: 2}"), "flows/etl.py": FLOW_V2}
    )
    # the disk says something else again: --ref must not look at it
    repo.write({"prefect.yaml": YAML_V1.replace("rows: 1}", "rows: 99}")})

    with desired_state.GitRepo.open(repo.root) as git:
        old, new = _load(git.tree(repo.root, c1)), _load(git.tree(repo.root, "main"))
    assert _deployments(old)["etl/daily"]["parameters"] == {"rows": 1}
    assert _deployments(old)["etl/daily"]["description"] == "Version one."
    assert _deployments(new)["etl-v2/daily"]["parameters"] == {"rows": 2}  # flow name read at the ref
    assert _deployments(new)["etl-v2/daily"]["description"] == "Version two."
    assert old.source.git == desired_state.GitInfo(commit=c1, ref=None, dirty=False)  # a sha names no ref
    assert new.source.git == desired_state.GitInfo(commit=c2, ref="main", dirty=False)
    assert _deployments(_load(desired_state.WorkingTree(repo.root)))["etl-v2/daily"]["parameters"] == {
        "rows": 99
    }


def test_project_in_a_subdirectory_reads_relative_to_it(repo: GitRepo) -> None:
    sha = repo.commit("sub", {"projects/etl/prefect.yaml": YAML_V1, "projects/etl/flows/etl.py": FLOW_V1})
    tree = desired_state.GitTree.open(repo.root / "projects" / "etl", sha)
    try:
        assert tree.prefix == "projects/etl"
        assert Address.deployment("etl", "daily") in _load(tree).resources
        assert tree.is_file("flows/etl.py") and tree.is_file("./flows/../flows/etl.py")
        assert not tree.is_file("flows")  # a directory is not a file
        with pytest.raises(OutsideProject):  # nothing outside the repository, and it says so
            tree.is_file("../../../etc/passwd")
        assert tree.cache_key("flows/etl.py").startswith("git:")
    finally:
        tree.close()


def test_missing_file_and_unknown_ref_are_clear_errors(repo: GitRepo) -> None:
    c1 = repo.commit("readme only", {"README.md": "hi\n"})
    repo.commit("project", {"prefect.yaml": YAML_V1, "flows/etl.py": FLOW_V1})
    with desired_state.GitRepo.open(repo.root) as git:
        with pytest.raises(SpecError, match="no such file"):
            _load(git.tree(repo.root, c1))
        with pytest.raises(desired_state.GitSourceError, match="unknown Git ref 'nope'"):
            git.tree(repo.root, "nope")
        with pytest.raises(desired_state.GitSourceError, match="unknown Git ref"):
            git.resolve("0" * 40)
    with pytest.raises(desired_state.GitSourceError, match="not inside a Git repository"):
        desired_state.GitRepo.open(repo.root.parent)


def test_symlinked_file_in_the_commit_is_followed(repo: GitRepo) -> None:
    repo.write({"real/prefect.yaml": YAML_V1, "flows/etl.py": FLOW_V1})
    os.symlink("real/prefect.yaml", repo.root / "prefect.yaml")
    sha = repo.commit("symlink")
    with desired_state.GitRepo.open(repo.root) as git:
        assert "deployments" in git.tree(repo.root, sha).read_text("prefect.yaml")


def test_detect_reports_commit_branch_and_dirty(repo: GitRepo, tmp_path: Path) -> None:
    assert desired_state.detect(tmp_path / "repo") is None  # no commit yet
    sha = repo.commit("one", {"prefect.yaml": YAML_V1, "flows/etl.py": FLOW_V1})
    assert desired_state.detect(repo.root) == desired_state.GitInfo(sha, "main", False)

    (repo.root / ".reconcile").mkdir()
    (repo.root / ".reconcile" / "state.db").write_text("x")  # our own state never makes it dirty
    (repo.root / "flows" / "__pycache__").mkdir()
    (repo.root / "flows" / "__pycache__" / "etl.cpython-311.pyc").write_text("x")
    assert desired_state.detect(repo.root) == desired_state.GitInfo(sha, "main", False)

    (repo.root / "flows" / "new.py").write_text("x = 1\n")  # untracked user file: dirty
    assert desired_state.detect(repo.root).dirty is True
    (repo.root / "flows" / "new.py").unlink()
    (repo.root / "prefect.yaml").write_text(YAML_V1 + "\n# edit\n")  # tracked change: dirty
    assert desired_state.detect(repo.root).dirty is True

    repo.git("stash", "-q")
    repo.checkout("--detach")
    assert desired_state.detect(repo.root) == desired_state.GitInfo(sha, None, False)
    outside = tmp_path / "outside"
    outside.mkdir()
    assert desired_state.detect(outside) is None


def test_dirty_is_scoped_to_the_project_directory(repo: GitRepo) -> None:
    repo.commit("two projects", {"a/prefect.yaml": YAML_V1, "b/prefect.yaml": YAML_V1})
    (repo.root / "b" / "prefect.yaml").write_text("changed\n")
    assert desired_state.detect(repo.root / "a").dirty is False
    assert desired_state.detect(repo.root / "b").dirty is True


def _cat_file_children() -> int:
    me = str(os.getpid())
    count = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if fields[1] == me and b"cat-file" in cmdline:
            count += 1
    return count


def test_one_long_lived_repo_and_close_ends_its_git_children(repo: GitRepo) -> None:
    sha = repo.commit("one", {"prefect.yaml": YAML_V1, "flows/etl.py": FLOW_V1})
    before = _cat_file_children()
    tree = desired_state.GitTree.open(repo.root, sha)
    for _ in range(20):  # many reads, one repository handle
        tree.read_text("prefect.yaml")
        tree.read_text("flows/etl.py")
    assert 1 <= _cat_file_children() - before <= 2  # GitPython keeps at most two cat-file children
    tree.close()
    assert _cat_file_children() == before

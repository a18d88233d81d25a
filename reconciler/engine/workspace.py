"""A Workspace: one project as the engine sees it — its directory, its file, its store, where output goes.

Everything is opened lazily and once: a command that never needs the store never opens it, and the
desired state is loaded with the store's fingerprint key only when the file holds a secret. Every
entry point (the CLI, ``trigger push``, ``--watch``, the GitHub Action) hands the engine one of these;
the CLI's ``App`` only adds what a terminal needs (colour, prompts).
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler import desired as desired_state
from reconciler import state
from reconciler.objects import LiveState
from reconciler.state import Store

if TYPE_CHECKING:
    from reconciler.launch import RunContext

STATE_ENV = "RECONCILE_STATE"


@dataclass
class Workspace:
    """The project directory, its desired-state file, the store URL, the project name and the output."""

    project_dir: Path
    file: str = "prefect.yaml"
    state_url: str | None = None
    no_color: bool = True
    project_override: str | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    public_env: frozenset[str] = frozenset()
    _store: Store | None = None
    _project: str | None = None
    _tree: desired_state.SourceTree | None = None
    _git_detected: bool = False

    # -- output ------------------------------------------------------------------------------------

    @property
    def color(self) -> bool:
        if self.no_color or "NO_COLOR" in self.environ:
            return False
        return sys.stdout.isatty()

    def out(self, text: str = "") -> None:
        print(text, flush=True)

    def err(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    # -- desired -----------------------------------------------------------------------------------

    @property
    def tree(self) -> desired_state.SourceTree:
        if self._tree is None:
            self._tree = desired_state.WorkingTree(self.project_dir)
        return self._tree

    def _desired_tree(self) -> desired_state.SourceTree:
        """Inside Git, the working tree learns its commit (so applies record it) when first loaded:
        GitPython is imported only by commands that read the desired state."""
        tree = self.tree
        if isinstance(tree, desired_state.WorkingTree) and tree.git is None and not self._git_detected:
            self._git_detected = True
            self._tree = tree = desired_state.WorkingTree(
                tree.root, git=desired_state.detect(self.project_dir)
            )
        return tree

    def use_tree(self, tree: desired_state.SourceTree) -> None:
        """Read the desired state from another source (a Git commit) instead of the working tree."""
        self.close_tree()
        self._tree = tree

    def use_ref(self, ref: str) -> desired_state.GitTree:
        """Read the desired state at a Git ref (no checkout); the tree's repository closes with the workspace."""
        tree = desired_state.GitTree.open(self.project_dir, ref)
        self.use_tree(tree)
        return tree

    def close_tree(self) -> None:
        if isinstance(self._tree, desired_state.GitTree):
            self._tree.close()

    def desired(self) -> desired_state.Desired:
        """The file's desired state, with fingerprints under the store's key."""
        desired = desired_state.load(
            self._desired_tree(),
            self.file,
            environ=self.environ,
            fingerprint_key=lambda project: self.store(project).fingerprint_key(),
            project=self.project_override,
            public_env=self.public_env,
        )
        self._project = desired.project
        return desired  # its warnings travel in the plan, which every command shows

    def validate_only(self) -> desired_state.Desired:
        """The desired state checked without touching any store (fingerprints under a throwaway key).
        It needs no environment: a placeholder whose variable is unset is a "not checked" warning."""
        return desired_state.load(
            self.tree,
            self.file,
            environ=self.environ,
            fingerprint_key=secrets.token_bytes(32),
            project=self.project_override,
            public_env=self.public_env,
            strict_env=False,
        )

    # -- live --------------------------------------------------------------------------------------

    @property
    def state_location(self) -> str:
        if self.state_url:
            return self.state_url
        if self.environ.get(STATE_ENV):
            return self.environ[STATE_ENV]
        return f"sqlite:///{(self.project_dir / '.reconcile' / 'state.db').resolve()}"

    def project(self) -> str:
        """The project name without loading the whole desired state (for runs, history, ...)."""
        if self._project is None:
            self._project = desired_state.project_of(self.tree, self.file, override=self.project_override)
        return self._project

    def store(self, project: str | None = None) -> Store:
        if self._store is None:
            self._store = state.open_store(self.state_location, project=project or self.project())
        return self._store

    def live(self) -> LiveState:
        return self.store().read_all()

    # -- runs --------------------------------------------------------------------------------------

    @property
    def runs_dir(self) -> Path:
        return self.project_dir / ".reconcile" / "runs"

    def run_context(self, live: LiveState | None = None) -> RunContext:
        from reconciler.launch import RunContext, make_launcher  # only commands that run load launchers

        runs_dir = self.runs_dir.resolve()
        return RunContext(
            store=self.store(),
            live=live if live is not None else self.live(),
            project_dir=self.project_dir.resolve(),
            runs_dir=runs_dir,
            environ=self.environ,
            launcher_factory=lambda name: make_launcher(name, runs_dir=runs_dir, environ=self.environ),
        )

    def close(self) -> None:
        self.close_tree()
        if self._store is not None:
            self._store.close()
            self._store = None

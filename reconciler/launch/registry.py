"""Which Launcher runs a pool type's jobs. Cloud launchers import their SDKs only when used."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path

from reconciler.errors import LauncherUnavailable
from reconciler.infra.install import install_hint
from reconciler.launch.base import Launcher
from reconciler.launch.process import ProcessLauncher

# launcher name (PoolType.launcher) -> (module, factory, pip extra that brings its SDK)
_CLOUD = {
    "ecs": ("reconciler.launch.ecs.launcher", "EcsLauncher", "aws"),
    "cloud-run": ("reconciler.launch.cloud_run.launcher", "CloudRunLauncher", "gcp"),
    "aci": ("reconciler.launch.aci.launcher", "AciLauncher", "azure"),
}


def extra_for(name: str) -> str | None:
    """The pip extra a launcher's SDK comes with (None: it needs nothing beyond the base install)."""
    return _CLOUD[name][2] if name in _CLOUD else None


# A test seam, documented as such: "module:factory" replaces every launcher of this process with
# ``factory(name, runs_dir=..., environ=...)`` (tests run `reconcile serve` processes on a fake one).
TEST_LAUNCHER_ENV = "RECONCILE_TEST_LAUNCHER"


def make_launcher(name: str, *, runs_dir: Path, environ: Mapping[str, str]) -> Launcher:
    """A launcher by name; a cloud launcher whose SDK or module is missing says so plainly."""
    seam = environ.get(TEST_LAUNCHER_ENV)
    if seam:
        module_name, _, factory = seam.partition(":")
        return getattr(importlib.import_module(module_name), factory)(
            name, runs_dir=runs_dir, environ=environ
        )
    if name == "process":
        return ProcessLauncher(runs_dir, environ=environ)
    if name not in _CLOUD:
        raise LauncherUnavailable(f"no launcher named {name!r}")
    module_name, factory, extra = _CLOUD[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise LauncherUnavailable(f"the {name} launcher is not available in this version") from None
        raise LauncherUnavailable(f"the {name} launcher needs {exc.name}: {install_hint(extra)}") from None
    return getattr(module, factory)(environ=environ)

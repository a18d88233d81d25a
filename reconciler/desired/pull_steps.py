"""The pull steps a deployment gets when its file does not say, computed as ``prefect deploy`` does.

Prefect's worker runs a deployment's pull steps before it imports the flow, and runs nothing else to
find the code: a deployment stored without any (``pull_steps: null``) crashes under Prefect's worker
with ``FileNotFoundError``. ``prefect deploy`` therefore always stores some (``prefect/cli/deploy``):

* the deployment's own ``pull:`` if it has steps, else the file's top-level ``pull:``;
* an explicit empty list (``pull: []``, the deployment's own or, without one, the file's) means none;
* otherwise a ``set_working_directory`` step: ``/opt/prefect/<project directory name>`` when a build
  step makes the image with ``dockerfile: auto`` (it copies the project there), ``/opt/prefect`` when
  the deployment names its own ``image``, and else the project directory on this machine.

One difference, on purpose: for a pool whose runs go into a container (ECS, Cloud Run, ACI ...) the
project directory of the machine that deploys does not exist inside the image, so there we store no
step and the run starts in the image's working directory (what our launchers and Prefect's engine do
without pull steps). The project directory is only useful to a worker on the same machine: when it
lies on a CI runner (a GitHub Actions checkout, say) :func:`ci_checkout` names the variable that
shows it, so the plan can warn and suggest a ``git_clone`` step instead.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

SET_WORKING_DIRECTORY = "prefect.deployments.steps.set_working_directory"
BUILD_DOCKER_IMAGE = "prefect_docker.deployments.steps.build_docker_image"
GIT_CLONE = "prefect.deployments.steps.git_clone"
IMAGE_DIRECTORY = "/opt/prefect"  # where prefect-docker's auto Dockerfile copies the project

# CI systems' checkout and scratch directories: a worker elsewhere never has these paths.
_CI_DIRECTORIES = (
    "GITHUB_WORKSPACE",
    "RUNNER_WORKSPACE",
    "RUNNER_TEMP",
    "CI_PROJECT_DIR",  # GitLab
    "CI_BUILDS_DIR",
    "BITBUCKET_CLONE_DIR",
    "BUILD_SOURCESDIRECTORY",  # Azure Pipelines
    "BUILDKITE_BUILD_CHECKOUT_PATH",
    "CIRCLE_WORKING_DIRECTORY",
)
_CI_PATHS = ("/home/runner",)  # GitHub-hosted runners, even when the variables are not passed on


def effective(
    *,
    own: Any,
    has_own: bool,
    top: Any,
    build: Any,
    job_variables: Mapping[str, Any],
    project_dir: Path,
    container: bool,
    resolved_dir: Path | None = None,
) -> list[Any] | None:
    """The pull steps to store: the file's when it has any, else ``prefect deploy``'s default.

    ``own``/``has_own`` are the deployment's ``pull`` (and whether the key is there), ``top`` the
    file's; ``build`` the build steps that apply to it; ``container`` whether the deployment's pool
    runs flows in a container image. ``resolved_dir`` is ``project_dir`` with symlinks followed when
    the caller already has it (the loader resolves it once per load, not once per deployment).
    """
    declared = own if has_own else top
    if declared == []:
        return []
    for steps in (own, top):
        if steps:
            return _as_list(steps)
    if _builds_auto_image(build):
        return [_set_working_directory(f"{IMAGE_DIRECTORY}/{project_dir.name}")]
    if job_variables.get("image"):
        return [_set_working_directory(IMAGE_DIRECTORY)]
    if container:
        return None
    return [_set_working_directory(str(resolved_dir or project_dir.resolve()))]


def working_directory(steps: list[Any] | None) -> str | None:
    """The directory a lone ``set_working_directory`` step points at (the default we compute)."""
    if not steps or len(steps) != 1 or not isinstance(steps[0], Mapping):
        return None
    inputs = steps[0].get(SET_WORKING_DIRECTORY)
    directory = inputs.get("directory") if isinstance(inputs, Mapping) else None
    return directory if isinstance(directory, str) else None


def for_local_run(steps: list[Any] | None, project_dir: Path, *, boundary: Path) -> list[Any] | None:
    """The steps a local run (our process launcher, in the checkout at ``project_dir``) follows.

    A lone ``set_working_directory`` step to a directory outside this checkout is the directory
    another checkout was applied from (stored for Prefect's workers on that machine): the code a local
    run executes is this checkout's, which ``validate`` checked, so the run starts here instead.
    """
    directory = working_directory(steps)
    if directory is None or not Path(directory).is_absolute():
        return steps
    target = Path(directory).resolve()
    if target == boundary or boundary in target.parents:
        return steps
    return None


def ci_checkout(directory: str, environ: Mapping[str, str]) -> str | None:
    """What shows that ``directory`` is a CI runner's (a variable name or a path), else None."""
    path = PurePosixPath(directory)
    for name in _CI_DIRECTORIES:
        value = environ.get(name)
        if value and _within(path, value):
            return f"${name}"
    for prefix in _CI_PATHS:
        if _within(path, prefix):
            return prefix
    return None


def ci_warning(deployment: str, directory: str, shown_by: str) -> str:
    return (
        f"warning: deployment {deployment!r} has no pull steps, so Prefect's workers will look for its "
        f"code in {directory} (under {shown_by}), a CI runner's checkout that no worker has; add a "
        f"`pull:` with a `{GIT_CLONE}` step (repository and branch) so workers fetch the code"
    )


def _within(path: PurePosixPath, prefix: str) -> bool:
    base = PurePosixPath(os.path.normpath(prefix))
    return path == base or base in path.parents


def _set_working_directory(directory: str) -> dict[str, Any]:
    return {SET_WORKING_DIRECTORY: {"directory": directory}}


def _as_list(steps: Any) -> list[Any]:
    return [steps] if isinstance(steps, Mapping) else list(steps)


def _builds_auto_image(build: Any) -> bool:
    for step in _as_list(build) if build else []:
        inputs = step.get(BUILD_DOCKER_IMAGE) if isinstance(step, Mapping) else None
        if isinstance(inputs, Mapping) and inputs.get("dockerfile") == "auto":
            return True
    return False

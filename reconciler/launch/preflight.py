"""Cloud preflight: read-only checks, with each push pool's own credentials, of what would fail its first run.

``reconcile plan --preflight`` asks each cloud, before anything is applied or launched, whether the
credentials work, the cluster / region / resource group exists, the image is in its registry (where
the registry can be asked), the roles exist, the subnets belong to the VPC and the cpu/memory pair
is one the platform accepts. Only read calls are made (the published policies in ``examples/``
allow them); nothing is created.

A check sees the job exactly as a run would: each deployment on a pool is rendered by
:func:`reconciler.launch.jobs.build_job` (the pool type's rules, blocks inlined, secrets resolved
from ``environ``), so a deployment that overrides ``image`` or ``cpu`` is checked with its own
values. A finding that holds for every deployment of a pool is reported once, for the pool; one
that differs names the deployment. Each cloud's checks live next to its launcher
(``launch/<cloud>/preflight.py``) and are imported only when a pool of that cloud is checked, so a
missing SDK is one finding, not a crash.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from reconciler import pooltypes
from reconciler.desired import Desired
from reconciler.errors import LaunchError
from reconciler.infra.install import install_hint
from reconciler.launch.base import Job
from reconciler.launch.jobs import build_job
from reconciler.objects import Kind, LiveState, Resource, StoredObject, iter_secrets
from reconciler.plan.model import PreflightResult
from reconciler.state import RunRecord, RunState

__all__ = ["Cache", "PreflightResult", "Target", "preflight_for", "result", "run_preflight", "targets_of"]

# launcher name (PoolType.launcher) -> the module whose ``check(target, environ, cache)`` checks it
_CHECKERS = {
    "ecs": "reconciler.launch.ecs.preflight",
    "cloud-run": "reconciler.launch.cloud_run.preflight",
    "aci": "reconciler.launch.aci.preflight",
}
_RUN_ID = "preflight"

# What one cloud call answered, shared by the checks of one preflight (a cluster checked once for
# twenty deployments). Keys are tuples that start with the cloud's name; values are whatever the
# checker stored (an answer, or the LaunchError it raised). Values under keys starting with
# "session" are SDK sessions, closed when the preflight ends.
Cache = MutableMapping[tuple[Any, ...], Any]


@dataclass(frozen=True)
class Target:
    """One pool as its first run would see it: the Job built for one of its deployments."""

    pool: str
    pool_type: str
    launcher: str
    deployment: str | None
    job: Job | None = field(default=None, repr=False)  # None when the job could not be built
    problem: str = ""  # why it could not be built (a missing secret, an unknown block)
    # (resolved secret value, how to show it): what findings must never print, see _redactions
    redact: tuple[tuple[str, str], ...] = field(default=(), repr=False)


class Checker(Protocol):
    def __call__(self, target: Target, environ: Mapping[str, str], cache: Cache) -> list[PreflightResult]: ...


def result(
    target: Target, field: str, check: str, ok: bool, message: str, *, skipped: bool = False
) -> PreflightResult:
    """A finding about ``target``'s pool (the deployment is attached later, only where findings differ)."""
    return PreflightResult(
        pool=target.pool, field=field, check=check, ok=ok, message=message, skipped=skipped
    )


def preflight_for(
    state: LiveState | Desired, environ: Mapping[str, str], *, live: LiveState | None = None
) -> tuple[PreflightResult, ...]:
    """Every push pool of ``state`` (the stored state, or the desired state about to be applied) checked.

    The entry point for ``reconcile plan --preflight`` and the Action's ``preflight`` input. With a
    desired state, pass the stored state as ``live`` too: blocks and pools the file references but
    does not declare are then found there (the file's own objects win).
    """
    return tuple(run_preflight(targets_of(state, environ, live=live), environ=environ))


def run_preflight(pools: Iterable[Target], *, environ: Mapping[str, str]) -> list[PreflightResult]:
    """The findings for these targets, grouped per pool (see the module doc for the merging)."""
    cache: Cache = {}
    by_pool: dict[str, list[Target]] = {}
    for target in pools:
        by_pool.setdefault(target.pool, []).append(target)
    findings: list[PreflightResult] = []
    try:
        for pool in sorted(by_pool):
            targets = by_pool[pool]
            per_target = [_check(target, environ, cache) for target in targets]
            findings.extend(_merge(targets, per_target))
    finally:
        for key, value in cache.items():
            if key[0] == "session":  # SDK clients a checker opened (see Cache)
                value.close()
    return findings


def targets_of(
    state: LiveState | Desired, environ: Mapping[str, str], *, live: LiveState | None = None
) -> list[Target]:
    """One Target per (cloud pool, deployment on it); a cloud pool without deployments is one skipped Target."""
    live = _as_live(state, live)
    pools = {a.name: s.resource for a, s in live.objects.items() if a.kind is Kind.WORK_POOL}
    deployments: dict[str, list[Resource]] = {}
    for address, stored in live.objects.items():
        if address.kind is Kind.DEPLOYMENT:
            pool_name = (stored.resource.body.get("work_pool") or {}).get("name")
            if pool_name:
                deployments.setdefault(str(pool_name), []).append(stored.resource)
    targets: list[Target] = []
    redact = _redactions(live, environ)
    for name in sorted(pools):
        pool_type = pooltypes.get(str(pools[name].body.get("type")))
        if pool_type is None or pool_type.launcher not in _CHECKERS:
            continue  # process pools and unknown types: nothing in a cloud to ask
        base = Target(name, pool_type.slug, pool_type.launcher, None, redact=redact)
        on_pool = sorted(deployments.get(name, []), key=lambda r: r.address.name)
        if not on_pool:
            targets.append(base)
        for deployment in on_pool:
            targets.append(_target(base, live, deployment, environ))
    return targets


# -- helpers -------------------------------------------------------------------------------------


def _as_live(state: LiveState | Desired, live: LiveState | None) -> LiveState:
    """The desired state in the stored state's shape (over the stored one, when given), so runs are
    rendered by the launch code itself."""
    if isinstance(state, LiveState):
        return state
    objects = dict(live.objects) if live is not None else {}
    objects.update({address: StoredObject(resource, 0) for address, resource in state.resources.items()})
    return LiveState(url="desired", serial=0, objects=objects)


def _target(base: Target, live: LiveState, deployment: Resource, environ: Mapping[str, str]) -> Target:
    run = RunRecord(
        id=_RUN_ID,
        deployment=deployment.address.name,
        pool=base.pool,
        pool_type=base.pool_type,
        state=RunState.SCHEDULED,
    )
    named = dataclasses.replace(base, deployment=deployment.address.name)
    try:
        job = build_job(live=live, run=run, project_dir=Path("."), environ=environ, log_path=None)
    except LaunchError as exc:
        return dataclasses.replace(named, problem=str(exc))
    return dataclasses.replace(named, job=job)


def _redactions(live: LiveState, environ: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """Every resolved secret of the state, longest first, with the form plans show it in.

    A finding quotes what the cloud answered (an image name, a cluster, a role ARN); any of those
    may have come from a secret placeholder, and the plan (a PR comment) must never show it.
    """
    found: dict[str, str] = {}
    for stored in live.objects.values():
        for secret in iter_secrets(stored.resource.body):
            try:
                value = secret.resolve(environ)
            except KeyError:
                continue  # unset: the build reports it by name
            names = ", ".join(f"${n}" for n in secret.env_names)
            if len(value) >= 4:  # shorter values would blank out ordinary words
                found.setdefault(value, f"(secret from {names})" if names else "(secret)")
    return tuple(sorted(found.items(), key=lambda item: -len(item[0])))


def _scrubbed(target: Target, findings: list[PreflightResult]) -> list[PreflightResult]:
    if not target.redact:
        return findings
    cleaned = []
    for finding in findings:
        message = finding.message
        for value, shown in target.redact:
            message = message.replace(value, shown)
        cleaned.append(dataclasses.replace(finding, message=message))
    return cleaned


def _check(target: Target, environ: Mapping[str, str], cache: Cache) -> list[PreflightResult]:
    return _scrubbed(target, _findings(target, environ, cache))


def _findings(target: Target, environ: Mapping[str, str], cache: Cache) -> list[PreflightResult]:
    if target.deployment is None:
        return [result(target, "deployments", "runs", True, "no deployment runs on this pool", skipped=True)]
    if target.job is None:
        return [result(target, "job_variables", "render", False, target.problem)]
    checker = _checker(target.launcher)
    if isinstance(checker, str):
        return [result(target, "job_variables", "sdk", False, checker)]
    try:
        return checker(target, environ, cache)
    except LaunchError as exc:  # a check that could not finish is a finding, never a failed plan
        return [result(target, "job_variables", "preflight", False, str(exc))]


def _checker(launcher: str) -> Checker | str:
    """The cloud's check function, or why it is not available (its SDK is not installed)."""
    extra = {"ecs": "aws", "cloud-run": "gcp", "aci": "azure"}[launcher]
    try:
        module = importlib.import_module(_CHECKERS[launcher])
    except ModuleNotFoundError as exc:
        return f"cannot check {launcher} pools without {exc.name}: {install_hint(extra)}"
    check: Callable[..., list[PreflightResult]] = module.check
    return check


def _merge(targets: Sequence[Target], per_target: Sequence[list[PreflightResult]]) -> list[PreflightResult]:
    """Findings every deployment shares are the pool's; the others name their deployment. Order kept."""
    counts: dict[PreflightResult, int] = {}
    for findings in per_target:
        for finding in dict.fromkeys(findings):
            counts[finding] = counts.get(finding, 0) + 1
    merged: list[PreflightResult] = []
    seen: set[PreflightResult] = set()
    for target, findings in zip(targets, per_target, strict=True):
        for finding in findings:
            if counts[finding] == len(targets):
                if finding not in seen:
                    seen.add(finding)
                    merged.append(finding)
                continue
            tagged = dataclasses.replace(finding, deployment=target.deployment)
            if tagged not in seen:
                seen.add(tagged)
                merged.append(tagged)
    return merged

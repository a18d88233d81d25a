"""ACI as prefect-azure does it: ``credential_kwargs`` belong to DefaultAzureCredential only; a private
authority turns instance discovery off by itself; a container killed by a signal (OOM) is CRASHED;
only the GPU SKU Azure still documents is accepted."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from reconciler import pooltypes
from reconciler.launch.aci import client as aci_client
from reconciler.launch.aci.client import AzureSession, Endpoints, describe
from reconciler.launch.aci.status import status_of
from reconciler.state import RunState


class Recorder:
    """Stands in for an azure-identity credential class and remembers its keyword arguments."""

    calls: list[tuple[str, dict[str, Any]]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        Recorder.calls.append((type(self).__name__, kwargs))


class SecretCredential(Recorder):
    pass


class DefaultCredential(Recorder):
    pass


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    Recorder.calls = []
    monkeypatch.setattr(aci_client, "ClientSecretCredential", SecretCredential)
    monkeypatch.setattr(aci_client, "DefaultAzureCredential", DefaultCredential)
    return Recorder.calls


def _credential(endpoints: Endpoints, data: dict[str, Any]) -> None:
    session = AzureSession(endpoints)
    principal = describe(data, pool="p", block="b")
    session._credential(aci_client._credential_key(data), data, principal)


def test_credential_kwargs_reach_default_azure_credential_only(recorded: list[Any]) -> None:
    endpoints = Endpoints.from_environ({})
    kwargs = {"exclude_managed_identity_credential": True}
    _credential(
        endpoints, {"client_id": "c", "tenant_id": "t", "client_secret": "s", "credential_kwargs": kwargs}
    )
    _credential(endpoints, {"credential_kwargs": kwargs})
    (secret_name, secret_kwargs), (default_name, default_kwargs) = recorded
    assert secret_name == "SecretCredential" and "exclude_managed_identity_credential" not in secret_kwargs
    assert (
        default_name == "DefaultCredential" and default_kwargs["exclude_managed_identity_credential"] is True
    )


@pytest.mark.parametrize(
    ("authority", "disabled"),
    [("https://login.microsoftonline.us", False), ("https://adfs.stack.local/adfs", True), (None, False)],
)
def test_instance_discovery_is_off_only_for_an_authority_azure_does_not_know(
    recorded: list[Any], authority: str | None, disabled: bool
) -> None:
    endpoints = Endpoints.from_environ({"AZURE_AUTHORITY_HOST": authority} if authority else {})
    _credential(endpoints, {"client_id": "c", "tenant_id": "t", "client_secret": "s"})
    ((_, kwargs),) = recorded
    assert kwargs.get("disable_instance_discovery", False) is disabled


def _terminated(code: int, detail: str = "") -> Any:
    state = SimpleNamespace(
        state="Terminated", exit_code=code, detail_status=detail, start_time=None, finish_time=None
    )
    container = SimpleNamespace(instance_view=SimpleNamespace(current_state=state, events=[]))
    return SimpleNamespace(
        name="g", containers=[container], instance_view=SimpleNamespace(state="Failed", events=[])
    )


@pytest.mark.parametrize(
    ("code", "state"), [(137, RunState.CRASHED), (143, RunState.CRASHED), (1, RunState.FAILED)]
)
def test_a_container_killed_by_a_signal_is_crashed_a_failing_flow_failed(code: int, state: RunState) -> None:
    status = status_of(
        _terminated(code, "OOMKilled" if code == 137 else ""), now=datetime.now(UTC), start_timeout=60
    )
    assert (status.state, status.exit_code) == (state, code)


def test_retired_gpu_skus_are_refused_naming_the_one_azure_documents() -> None:
    aci = pooltypes.get("azure-container-instance:push")
    problems = aci.validate_job_variables({"gpu_count": 1, "gpu_sku": "K80"})
    errors = [p for p in problems if not p.warning]
    assert [p.path for p in errors] == [("gpu_sku",)] and "V100" in errors[0].message

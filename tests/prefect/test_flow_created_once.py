"""A wave's parallel deployment writes create each flow once: the threads writing deployments of one
flow wait for the first one's ``POST /flows/`` instead of each sending it (measured in BENCHMARKS.md:
34 flow requests for 10 flows at 100 deployments before)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx
import pytest

from reconciler import apply as applying
from reconciler import desired as desired_state
from tests.prefect.conftest import StoreOpener, unique
from tests.prefect.test_apply_waves import _project

pytestmark = pytest.mark.prefect_server


class CountingTransport(httpx.HTTPTransport):
    """Counts requests by method and path below /api (``POST /flows/``)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: Counter[str] = Counter()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent[f"{request.method} /{request.url.path.split('/api/', 1)[-1]}"] += 1
        return super().handle_request(request)


def test_a_wave_of_one_flows_deployments_creates_the_flow_once(
    tmp_path: Path, open_store: StoreOpener
) -> None:
    transport = CountingTransport()
    store = open_store(transport=transport)
    root = _project(tmp_path / "p", unique("pool"), 24)
    desired = desired_state.load(
        desired_state.WorkingTree(root), environ={}, fingerprint_key=lambda _p: store.fingerprint_key()
    )
    with store.lock(timeout=30, info=applying.lock_info()):
        plan = applying.plan_for(desired, store.read_all())
        transport.sent.clear()
        applying.execute(plan, store, options=applying.ApplyOptions(parallelism=8))
    assert transport.sent["POST /flows/"] == 1, transport.sent
    assert transport.sent["POST /deployments/"] >= 24
    assert applying.plan_for(desired, store.read_all()).has_changes is False

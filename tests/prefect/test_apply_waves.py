"""Apply in dependency waves on a real Prefect server: the writes of a wave go side by side and the
inventory is recorded once per wave, so a first apply costs about one write per object instead of a
Variable read and write on top of each (measured in BENCHMARKS.md)."""

from __future__ import annotations

import textwrap
from collections import Counter
from pathlib import Path

import httpx
import pytest

from reconciler import apply as applying
from reconciler import desired as desired_state
from reconciler.objects import Kind
from tests.prefect.conftest import StoreOpener, unique

pytestmark = pytest.mark.prefect_server


class CountingTransport(httpx.HTTPTransport):
    """Counts requests by first path segment after /api (``variables``, ``deployments``, ...)."""

    def __init__(self) -> None:
        super().__init__()
        self.by_path: Counter[str] = Counter()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        parts = request.url.path.split("/api/", 1)[-1].split("/")
        self.by_path[parts[0]] += 1
        return super().handle_request(request)


def _project(root: Path, pool: str, n: int) -> Path:
    """``n`` deployments of one flow on ``pool``; the flow's name is unique, because the tests of one
    xdist worker share a server and deployments are keyed FLOW/NAME there."""
    flow = "f_" + pool.replace("-", "_")
    deployments = "".join(
        f"  - name: d{i:03}\n    entrypoint: flows/f.py:{flow}\n    parameters: {{i: {i}}}\n"
        f"    work_pool: {{name: {pool}}}\n"
        for i in range(n)
    )
    root.mkdir(parents=True, exist_ok=True)
    (root / "flows").mkdir(exist_ok=True)
    (root / "flows" / "f.py").write_text(f"def {flow}(i: int = 0):\n    print(i)\n")
    (root / "prefect.yaml").write_text(
        textwrap.dedent(f"""\
        work_pools:
          - name: {pool}
            type: process
        deployments:
        """)
        + deployments
    )
    return root


def test_a_wave_records_the_inventory_once_and_converges(tmp_path: Path, open_store: StoreOpener) -> None:
    transport = CountingTransport()
    store = open_store(transport=transport)
    root = _project(tmp_path / "p", unique("pool"), 40)
    desired = desired_state.load(
        desired_state.WorkingTree(root), environ={}, fingerprint_key=lambda _p: store.fingerprint_key()
    )
    with store.lock(timeout=30, info=applying.lock_info()):
        plan = applying.plan_for(desired, store.read_all())
        assert [len(w) for w in applying.waves(plan.writes)] == [1, 40]
        transport.by_path.clear()
        result = applying.execute(plan, store, options=applying.ApplyOptions(parallelism=8))
    assert len(result.results) == 41
    # the inventory: each touched shard read and saved once per wave (a handful of shards), not a
    # Variable read and write per object (82 requests for these 41 objects before waves)
    assert transport.by_path["variables"] <= 16, transport.by_path
    live = store.read_all()
    assert len([a for a in live.objects if a.kind is Kind.DEPLOYMENT]) == 40
    assert all(o.version == 1 for o in live.objects.values())
    assert applying.plan_for(desired, live).has_changes is False  # apply then plan: nothing


def test_waves_group_by_kind_and_direction() -> None:
    from reconciler.objects import Address
    from reconciler.plan import Action, Change

    def change(address: str, action: Action) -> Change:
        return Change(address=Address.parse(address), action=action, version=None)

    changes = [
        change("deployment.f/a", Action.DELETE),
        change("deployment.f/b", Action.DELETE),
        change("work_pool.old", Action.DELETE),
        change("block.secret/x", Action.CREATE),
        change("work_pool.p", Action.CREATE),
        change("work_pool.q", Action.UPDATE),
        change("deployment.f/c", Action.CREATE),
    ]
    assert [[str(c.address) for c in w] for w in applying.waves(changes)] == [
        ["deployment.f/a", "deployment.f/b"],
        ["work_pool.old"],
        ["block.secret/x"],
        ["work_pool.p", "work_pool.q"],
        ["deployment.f/c"],
    ]


def test_an_automation_naming_another_is_written_a_wave_after_it() -> None:
    """Kind rank orders kinds, not the objects of one kind: an automation that pauses another needs
    the other's id, so the other must exist (be written in an earlier wave) first."""
    from reconciler.objects import Address, Resource
    from reconciler.plan import Action, Change

    first, second, alone = (Address.automation(n) for n in ("a-pauses-b", "b", "c"))
    changes = [
        Change(first, Action.CREATE, None, after=Resource(first, {}, depends_on=(second,))),
        Change(second, Action.CREATE, None, after=Resource(second, {})),
        Change(alone, Action.CREATE, None, after=Resource(alone, {})),
    ]
    assert [[c.address.name for c in w] for w in applying.waves(changes)] == [["b", "c"], ["a-pauses-b"]]

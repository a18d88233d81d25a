"""``reconcile import`` on a real Prefect server: a workspace made by hand becomes file sections."""

from __future__ import annotations

import textwrap
from pathlib import Path

import httpx
import pytest

from reconciler import desired as desired_state
from reconciler.objects import Address, Secret
from reconciler.state.prefect.api import PrefectStore
from tests.fixtures.prefect_server import PrefectServer
from tests.prefect.conftest import cli, unique

pytestmark = pytest.mark.prefect_server

SECRET_VALUE = "made-in-the-ui-s3cret"


def make_by_hand(api: httpx.Client, pool: str, deployment: str, block: str) -> None:
    """What a team clicked together in the UI (or made with `prefect deploy`): nothing of ours on it."""
    made = api.post(
        "work_pools/",
        json={"name": pool, "type": "process", "description": "from the UI", "concurrency_limit": 3},
    )
    assert made.status_code == 201, made.text
    flow = api.post("flows/", json={"name": "hello"}).json()
    body = {
        "flow_id": flow["id"],
        "name": deployment,
        "work_pool_name": pool,
        "entrypoint": "flows/hello.py:hello",
        "parameters": {"name": "ui"},
        "tags": ["ui"],
        "schedules": [
            {
                "schedule": {"cron": "0 6 * * *", "timezone": "Europe/Berlin"},
                "active": True,
                "slug": "morning",
            }
        ],
    }
    assert api.post("deployments/", json=body).status_code in (200, 201)
    block_type = api.get("block_types/slug/secret").json()
    schemas = api.post(
        "block_schemas/filter", json={"block_schemas": {"block_type_id": {"any_": [block_type["id"]]}}}
    )
    document = {
        "name": block,
        "block_type_id": block_type["id"],
        "block_schema_id": schemas.json()[0]["id"],
        "data": {"value": SECRET_VALUE},
    }
    assert api.post("block_documents/", json=document).status_code == 201


def test_import_writes_a_hand_made_workspace_that_loads_back_as_the_server_holds_it(
    tmp_path: Path, prefect_server: PrefectServer
) -> None:
    pool, deployment, block = unique("ui-pool"), unique("ui-dep"), unique("ui-secret")
    with prefect_server.client() as api:
        make_by_hand(api, pool, deployment, block)
    project = tmp_path / "adopt"
    (project / "flows").mkdir(parents=True)
    (project / "flows" / "hello.py").write_text(
        textwrap.dedent(
            """
            def hello(name: str = "world") -> str:
                return name
            """
        ),
        encoding="utf-8",
    )
    (project / "prefect.yaml").write_text("# adopted from the workspace\nname: adopt\n", encoding="utf-8")

    result = cli(
        prefect_server,
        project,
        "import",
        f"deployment.hello/{deployment}",
        f"block.secret/{block}",
        "--write",
    )
    assert result.returncode == 0, result.stderr
    assert f"also importing work_pool.{pool}" in result.stderr
    text = (project / "prefect.yaml").read_text(encoding="utf-8")
    assert text.startswith("# adopted from the workspace\nname: adopt\n")
    placeholder = "SECRET_" + block.upper().replace("-", "_") + "_VALUE"
    assert f'value: "{{{{ ${placeholder} }}}}"' in text
    assert placeholder in result.stderr  # the name to set is listed
    for output in (text, result.stdout, result.stderr):
        assert SECRET_VALUE not in output

    store = PrefectStore(prefect_server.state_url, project="adopt")
    try:
        unmanaged = store.read_unmanaged()
    finally:
        store.close()
    desired = desired_state.load(
        desired_state.WorkingTree(project), environ={placeholder: SECRET_VALUE}, fingerprint_key=b"k" * 32
    )
    # What a file cannot hold and apply fills in as `prefect deploy` would: the flow's version (the
    # hand-made deployment has none) and the parameter schema read from the flow's source.
    derived = ("version", "parameter_openapi_schema")
    for address in (Address.pool(pool), Address.deployment("hello", deployment)):
        body, server = desired.resources[address].body, unmanaged[address]
        assert {k: v for k, v in body.items() if k not in derived} == {
            k: v for k, v in server.items() if k not in derived
        }
    loaded = desired.resources[Address.block("secret", block)].body
    assert isinstance(loaded["data"]["value"], Secret)  # the server showed ******** : the value stays out
    assert {**loaded, "data": {}} == {**unmanaged[Address.block("secret", block)], "data": {}}
